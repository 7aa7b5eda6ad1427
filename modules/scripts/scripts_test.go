package scripts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// call is what the fake executor saw for one Run.
type call struct {
	cmd   modules.Command
	files map[string]string // files below the program's directory at run time
}

// fakeExec records commands and the files the step put into the target.
type fakeExec struct {
	root     *rootfs.Root
	snapshot string
	calls    []call
	code     int
	err      error
	output   []string // written to Output, one Write each
}

func (f *fakeExec) SnapshotPath() string { return f.snapshot }

func (f *fakeExec) Run(_ context.Context, cmd modules.Command) (int, error) {
	c := call{cmd: cmd, files: map[string]string{}}
	base, _ := f.root.Resolve("/run/provision")
	filepath.Walk(base, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(f.root.Dir, p)
			c.files["/"+rel] = string(data)
		}
		return nil
	})
	f.calls = append(f.calls, c)
	for _, o := range f.output {
		cmd.Output.Write([]byte(o))
	}
	return f.code, f.err
}

func newEnv(t *testing.T) (*modules.Env, *fakeExec, *bytes.Buffer) {
	t.Helper()
	root, err := rootfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeExec{root: root}
	var console bytes.Buffer
	return &modules.Env{Root: root, Console: &console, Exec: fe}, fe, &console
}

func origin(file string, line int) config.Origin {
	return config.Origin{Source: "dir:/seed", File: file, Line: line, Column: 1}
}

func mixedConfig() *config.Config {
	return &config.Config{
		InstanceID: config.Setting{Value: "iid-1"},
		Scripts: []config.Script{
			{Kind: config.ScriptUser, Name: "hello.sh", Body: []byte("#!/bin/sh\necho hi\n"), Origin: origin("user-data", 1), Frequency: "instance"},
			{Kind: config.ScriptRuncmd, Body: []byte("echo one"), Origin: origin("user-data", 10)},
			{Kind: config.ScriptCombustion, Body: []byte("#!/bin/bash\n# combustion: network\necho c\n"), NeedsNetwork: true, Origin: origin("script", 0)},
			{Kind: config.ScriptBootcmd, Argv: []string{"echo", "it's"}, Origin: origin("user-data", 3)},
			{Kind: config.ScriptRuncmd, Argv: []string{"ls", "-l", "/"}, Origin: origin("user-data", 11)},
			{Kind: config.ScriptBoothook, Name: "hook", Body: []byte("#cloud-boothook\n#!/bin/sh\necho early\n"), Origin: origin("user-data", 20)},
		},
	}
}

func TestPlanOrder(t *testing.T) {
	steps, err := Plan(mixedConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.String())
	}
	want := []string{
		"scripts: run bootcmd (1 command) [dir:/seed:user-data:3:1]",
		"scripts: run boothook hook [dir:/seed:user-data:20:1]",
		"scripts: run combustion script (combustion: network) [dir:/seed:script]",
		"scripts: run runcmd (2 commands) [dir:/seed:user-data:10:1]",
		"scripts: run script hello.sh (per-instance) [dir:/seed:user-data:1:1]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	early, _ := PlanPhase(mixedConfig(), nil, Early)
	late, _ := PlanPhase(mixedConfig(), nil, Late)
	if len(early) != 2 || len(late) != 3 {
		t.Fatalf("phases: %d early, %d late", len(early), len(late))
	}
}

func TestPlanEmpty(t *testing.T) {
	steps, err := Plan(&config.Config{}, nil)
	if err != nil || len(steps) != 0 {
		t.Fatalf("got %v, %v", steps, err)
	}
}

func TestPlanErrors(t *testing.T) {
	for name, s := range map[string]config.Script{
		"unknown kind":    {Kind: "jinja", Origin: origin("user-data", 4)},
		"escaping file":   {Kind: config.ScriptCombustion, Body: []byte("x"), Files: map[string][]byte{"../etc/passwd": nil}, Origin: origin("script", 0)},
		"absolute file":   {Kind: config.ScriptCombustion, Body: []byte("x"), Files: map[string][]byte{"/etc/passwd": nil}, Origin: origin("script", 0)},
		"empty script":    {Kind: config.ScriptCombustion, Origin: origin("script", 0)},
		"empty user part": {Kind: config.ScriptUser, Name: "x", Origin: origin("user-data", 4)},
		"empty boothook":  {Kind: config.ScriptBoothook, Body: []byte("#cloud-boothook\n"), Origin: origin("user-data", 4)},
	} {
		_, err := Plan(&config.Config{Scripts: []config.Script{s}}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), s.Origin.String()+": ") {
			t.Errorf("%s: got %v, want an error starting with the origin", name, err)
		}
	}
}

func TestShellify(t *testing.T) {
	got := string(Shellify([]config.Script{
		{Body: []byte("echo $HOME > /tmp/x")},
		{Argv: []string{"echo", "it's", "a b", "$HOME"}},
		{Body: []byte("multi\nline\n")},
		{Argv: []string{}},
	}))
	want := "#!/bin/sh\n" +
		"echo $HOME > /tmp/x\n" +
		`'echo' 'it'\''s' 'a b' '$HOME'` + "\n" +
		"multi\nline\n" +
		"\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestCombustionApply(t *testing.T) {
	env, fe, console := newEnv(t)
	fe.snapshot = "/.snapshots/5/snapshot"
	fe.output = []string{"hello\n", "partial"}
	cfg := &config.Config{Scripts: []config.Script{{
		Kind:   config.ScriptCombustion,
		Body:   []byte("#!/bin/sh\necho hello\n"),
		Files:  map[string][]byte{"ssh/key.pub": []byte("ssh-ed25519 AAAA"), "script": []byte("old")},
		Origin: origin("script", 0),
	}}}
	steps, err := Plan(cfg, env.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := steps[0].Apply(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if len(fe.calls) != 1 {
		t.Fatalf("%d calls", len(fe.calls))
	}
	c := fe.calls[0]
	if strings.Join(c.cmd.Argv, " ") != "./script" || c.cmd.Dir != CombustionDir {
		t.Errorf("argv %q dir %q", c.cmd.Argv, c.cmd.Dir)
	}
	wantEnv := "TRANSACTIONAL_UPDATE=true TRANSACTIONAL_UPDATE_ROOT=/.snapshots/5/snapshot LANG=C PROVISION=1"
	if strings.Join(c.cmd.Env, " ") != wantEnv {
		t.Errorf("env %q", c.cmd.Env)
	}
	if c.files[CombustionDir+"/script"] != "#!/bin/sh\necho hello\n" || c.files[CombustionDir+"/ssh/key.pub"] != "ssh-ed25519 AAAA" {
		t.Errorf("files at run time: %v", c.files)
	}
	if console.String() != "[combustion] hello\n[combustion] partial\n" {
		t.Errorf("console %q", console.String())
	}
	if env.Root.Exists(CombustionDir) {
		t.Errorf("%s left behind", CombustionDir)
	}
}

func TestCombustionWithoutShebangRunsUnderSh(t *testing.T) {
	env, fe, _ := newEnv(t)
	steps, _ := Plan(&config.Config{Scripts: []config.Script{{Kind: config.ScriptCombustion, Body: []byte("echo x\n")}}}, nil)
	if err := steps[0].Apply(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fe.calls[0].cmd.Argv, " "); got != "/bin/sh ./script" {
		t.Fatalf("argv %q", got)
	}
	// An executor that does not know the snapshot path gives "/".
	if !strings.Contains(strings.Join(fe.calls[0].cmd.Env, " "), "TRANSACTIONAL_UPDATE_ROOT=/ ") {
		t.Fatalf("env %q", fe.calls[0].cmd.Env)
	}
}

func TestExitStatusIsError(t *testing.T) {
	env, fe, _ := newEnv(t)
	fe.code = 3
	steps, _ := Plan(&config.Config{Scripts: []config.Script{{Kind: config.ScriptCombustion, Body: []byte("#!/bin/sh\nexit 3\n"), Origin: origin("script", 0)}}}, nil)
	err := steps[0].Apply(context.Background(), env)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("got %v", err)
	}
	if want := "dir:/seed:script: combustion script exited with status 3"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if env.Root.Exists(CombustionDir) {
		t.Errorf("%s left behind after a failure", CombustionDir)
	}
}

func TestExecutorErrorCarriesOrigin(t *testing.T) {
	env, fe, _ := newEnv(t)
	fe.code, fe.err = -1, errors.New("timed out after 30m0s")
	steps, _ := Plan(&config.Config{Scripts: []config.Script{{Kind: config.ScriptRuncmd, Body: []byte("sleep 9999"), Origin: origin("user-data", 7)}}}, nil)
	err := steps[0].Apply(context.Background(), env)
	if err == nil || err.Error() != "dir:/seed:user-data:7:1: runcmd: timed out after 30m0s" {
		t.Fatalf("got %v", err)
	}
}

func TestRuncmdAndBootcmdApply(t *testing.T) {
	env, fe, _ := newEnv(t)
	steps, err := Plan(mixedConfig(), env.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := s.Apply(context.Background(), env); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	byArgv := map[string]call{}
	for _, c := range fe.calls {
		byArgv[strings.Join(c.cmd.Argv, " ")] = c
	}
	boot, ok := byArgv["/bin/sh "+ScriptDir+"/bootcmd"]
	if !ok {
		t.Fatalf("no bootcmd call in %v", fe.calls)
	}
	if boot.files[ScriptDir+"/bootcmd"] != "#!/bin/sh\n'echo' 'it'\\''s'\n" {
		t.Errorf("bootcmd file %q", boot.files[ScriptDir+"/bootcmd"])
	}
	if !strings.Contains(strings.Join(boot.cmd.Env, " "), "INSTANCE_ID=iid-1") || boot.cmd.Dir != "/" {
		t.Errorf("bootcmd env %q dir %q", boot.cmd.Env, boot.cmd.Dir)
	}
	run, ok := byArgv[ScriptDir+"/runcmd"]
	if !ok || run.files[ScriptDir+"/runcmd"] != "#!/bin/sh\necho one\n'ls' '-l' '/'\n" {
		t.Errorf("runcmd call %v", run)
	}
	hook, ok := byArgv[ScriptDir+"/boothooks/hook"]
	if !ok || hook.files[ScriptDir+"/boothooks/hook"] != "#!/bin/sh\necho early\n" {
		t.Errorf("boothook call %v", hook)
	}
	if _, ok := byArgv[ScriptDir+"/scripts/hello.sh"]; !ok {
		t.Errorf("user script not run directly: %v", fe.calls)
	}
	order := []string{}
	for _, c := range fe.calls {
		order = append(order, filepath.Base(c.cmd.Argv[len(c.cmd.Argv)-1]))
	}
	if strings.Join(order, ",") != "bootcmd,hook,script,runcmd,hello.sh" {
		t.Errorf("run order %v", order)
	}
}

func TestNoExecutor(t *testing.T) {
	env, _, _ := newEnv(t)
	env.Exec = nil
	steps, _ := Plan(mixedConfig(), nil)
	if err := steps[0].Apply(context.Background(), env); err == nil || !strings.Contains(err.Error(), "no executor") {
		t.Fatalf("got %v", err)
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewPrefixWriter(&b, "[x] ")
	w.Write([]byte("a\nb"))
	w.Write([]byte("c\n\nd"))
	w.Flush()
	w.Flush()
	if b.String() != "[x] a\n[x] bc\n[x] \n[x] d\n" {
		t.Fatalf("got %q", b.String())
	}
}

func TestRunPrepare(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	s := config.Script{
		Kind:    config.ScriptCombustion,
		Prepare: true,
		Origin:  origin("script", 0),
		Body: []byte("#!/bin/sh\n# combustion: prepare\n" +
			`echo "arg=$1 pwd=$(pwd) lang=$LANG provision=$PROVISION"` + "\n" +
			"cat data/file\n" +
			`[ "$1" = --prepare ] && exit 4` + "\n"),
		Files: map[string][]byte{"data/file": []byte("sibling\n")},
	}
	err := RunPrepare(context.Background(), s, dir, &out)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 4 || err.Error() != "dir:/seed:script: combustion script --prepare exited with status 4" {
		t.Fatalf("got %v", err)
	}
	want := "[combustion --prepare] arg=--prepare pwd=" + dir + " lang=C provision=1\n[combustion --prepare] sibling\n"
	if out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
}

func TestNonFatalMarker(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{"# provision: non-fatal", true},
		{"#!/bin/sh\n  #provision:   network non-fatal  \nfalse\n", true},
		{"#!/bin/sh\n# provision: nonfatal\n", false},
		{"#!/bin/sh\necho '# provision: non-fatal'\n", false},
		{"#!/bin/sh\n# combustion: non-fatal\n", false},
		{"", false},
	} {
		if got := marksNonFatal([]byte(c.body)); got != c.want {
			t.Errorf("marksNonFatal(%q) = %v, want %v", c.body, got, c.want)
		}
	}
}

func TestNonFatalProgramFailureIsTolerated(t *testing.T) {
	for _, c := range []struct {
		name     string
		scripts  []config.Script
		nonFatal bool
	}{
		{"runcmd entry marks the list", []config.Script{
			{Kind: config.ScriptRuncmd, Body: []byte(NonFatalMarker), Origin: origin("user-data", 2)},
			{Kind: config.ScriptRuncmd, Argv: []string{"false"}, Origin: origin("user-data", 3)},
		}, true},
		// A list entry is quoted into a command, never a comment.
		{"argv entry is not a mark", []config.Script{
			{Kind: config.ScriptRuncmd, Argv: []string{"#", "provision:", "non-fatal"}, Origin: origin("user-data", 2)},
			{Kind: config.ScriptRuncmd, Argv: []string{"false"}, Origin: origin("user-data", 3)},
		}, false},
		{"user script", []config.Script{
			{Kind: config.ScriptUser, Name: "a.sh", Body: []byte("#!/bin/sh\n# provision: non-fatal\nexit 5\n"), Origin: origin("user-data", 1)},
		}, true},
		{"combustion script", []config.Script{
			{Kind: config.ScriptCombustion, Body: []byte("#!/bin/sh\n# combustion: network\n# provision: non-fatal\nexit 5\n"), Origin: origin("script", 0)},
		}, true},
		{"unmarked user script", []config.Script{
			{Kind: config.ScriptUser, Name: "a.sh", Body: []byte("#!/bin/sh\nexit 5\n"), Origin: origin("user-data", 1)},
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, fe, _ := newEnv(t)
			fe.code = 5
			steps, err := Plan(&config.Config{Scripts: c.scripts}, nil)
			if err != nil || len(steps) != 1 {
				t.Fatalf("plan: %v, %d steps", err, len(steps))
			}
			if got := strings.Contains(steps[0].Detail, "non-fatal"); got != c.nonFatal {
				t.Errorf("plan detail %q: says non-fatal %v, want %v", steps[0].Detail, got, c.nonFatal)
			}
			err = steps[0].Apply(context.Background(), env)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 5 {
				t.Fatalf("got %v, want the exit status", err)
			}
			_, tolerated := err.(*modules.NonFatalError)
			if tolerated != c.nonFatal {
				t.Errorf("NonFatalError %v, want %v (%v)", tolerated, c.nonFatal, err)
			}
			// ApplyAll goes on after a tolerated failure only.
			if err := modules.ApplyAll(context.Background(), env, steps); (err == nil) != c.nonFatal {
				t.Errorf("ApplyAll: %v", err)
			}
		})
	}
}

func TestNonFatalKeepsExecutorErrorsFatal(t *testing.T) {
	env, fe, _ := newEnv(t)
	fe.code, fe.err = -1, errors.New("timed out after 30m0s")
	steps, _ := Plan(&config.Config{Scripts: []config.Script{{Kind: config.ScriptUser, Body: []byte("#!/bin/sh\n# provision: non-fatal\nsleep 9999\n"), Origin: origin("user-data", 7)}}}, nil)
	err := steps[0].Apply(context.Background(), env)
	if _, ok := err.(*modules.NonFatalError); ok || err == nil {
		t.Fatalf("a program that could not run to its end is fatal even when marked: %v", err)
	}
}
