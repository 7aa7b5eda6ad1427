// Command startup times commands against each other, interleaved: each
// round starts every command once, in turn (the order reversed every other
// round), so a machine that speeds up or slows down meanwhile weighs on
// all of them alike. A block of runs of one command, then a block of the
// other, as hyperfine times them, lets a drift of the machine's load pass
// for a difference between the commands. It prints each command's median
// wall time and the ratio of each to the first, both of the medians and
// the median of the rounds' own ratios.
//
//	startup [-runs N] [-warmup N] CMD [CMD...]
//
// Each CMD is one argument, split at blanks (no quoting): "bin/provision
// --version". Output goes to /dev/null; a command that fails stops it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

func main() {
	runs := flag.Int("runs", 300, "rounds")
	warmup := flag.Int("warmup", 20, "rounds run first and not timed")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) == 0 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: startup [-runs N] [-warmup N] CMD [CMD...]")
		os.Exit(2)
	}
	times := make([][]time.Duration, len(cmds))
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	for round := 0; round < *warmup+*runs; round++ {
		slices.Reverse(order)
		for _, i := range order {
			d, err := start(cmds[i])
			if err != nil {
				fmt.Fprintf(os.Stderr, "startup: %s: %v\n", cmds[i], err)
				os.Exit(1)
			}
			if round >= *warmup {
				times[i] = append(times[i], d)
			}
		}
	}
	for i, c := range cmds {
		line := fmt.Sprintf("%s: median %.2f ms", c, ms(median(times[i])))
		if i > 0 {
			ratios := make([]float64, len(times[i]))
			for r := range times[i] {
				ratios[r] = float64(times[i][r]) / float64(times[0][r])
			}
			line += fmt.Sprintf(", %.2fx the first (per round %.2fx)", float64(median(times[i]))/float64(median(times[0])), median(ratios))
		}
		fmt.Println(line)
	}
	fmt.Printf("(%d interleaved rounds after %d untimed)\n", *runs, *warmup)
}

// start runs cmd to its end and returns the wall time from before the
// fork to after the wait.
func start(cmd string) (time.Duration, error) {
	f := strings.Fields(cmd)
	c := exec.Command(f[0], f[1:]...)
	t0 := time.Now()
	err := c.Run()
	return time.Since(t0), err
}

func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
