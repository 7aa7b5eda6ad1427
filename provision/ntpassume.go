package provision

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/provision-dev/provision/provision/config"
)

// chronyStandIn is MicroOS's chrony as far as ntp reads it: the daemon,
// chrony.conf including /etc/chrony.d, and the unit.
var chronyStandIn = map[string]string{
	"usr/sbin/chronyd": "",
	"etc/chrony.conf":  "include /etc/chrony.d/*.conf\n",
	"usr/lib/systemd/system/chronyd.service": "[Unit]\nDescription=stand-in for the image's chronyd.service\n" +
		"[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\nWantedBy=multi-user.target\n",
}

// assumeNTPClient gives a base tree the chrony MicroOS ships when the
// config has ntp with a client auto or chrony: the plan then shows the
// drop-in and the enable a MicroOS image gets, instead of asking for a
// client the image most likely has. The warning says it was assumed.
func assumeNTPClient(dir string, cfg *config.Config) (string, error) {
	n := cfg.NTP
	if n == nil || (n.Client != "auto" && n.Client != "chrony") || n.CheckExe != "" {
		return "", nil
	}
	for name, content := range chronyStandIn {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s: ntp: the image's NTP client is assumed to be chrony, as MicroOS ships it (%s)", n.Origin, onlyWithRoot), nil
}
