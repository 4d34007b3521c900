package mailtest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// watchdogScript runs beside the test binary, reading its stdin, a pipe the
// test process holds. When that pipe ends without "done" (the test binary
// died: a -timeout panic, a kill), it stops this stack's Postfix, which
// daemonizes and would otherwise run on, and the Dovecot process group it
// was last told about. It ignores the terminal's SIGINT and runs in its own
// process group, so a Ctrl-C that kills the test still lets it work.
const watchdogScript = `trap '' INT HUP
postfix=$1 conf=$2 pg=
while read -r cmd arg; do
	case $cmd in
	dovecot) pg=$arg ;;
	nodovecot) pg= ;;
	done) exit 0 ;;
	esac
done
"$postfix" -c "$conf" stop >/dev/null 2>&1
case $pg in
[2-9]*|1[0-9]*) kill -TERM -- "-$pg" 2>/dev/null ;;
esac
exit 0
`

// watchdog is the test-side end of the watchdog process.
type watchdog struct {
	mu  sync.Mutex
	w   io.WriteCloser
	cmd *exec.Cmd
}

func startWatchdog(postfixConf string) (*watchdog, error) {
	pf, err := lookBin("postfix")
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "mailtest-watchdog", pf, postfixConf)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting watchdog: %w", err)
	}
	r.Close()
	return &watchdog{w: w, cmd: cmd}, nil
}

// tell sends one line; a dead watchdog is not worth failing a test for.
func (d *watchdog) tell(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		fmt.Fprintln(d.w, line)
	}
}

// done ends the watchdog without it touching anything.
func (d *watchdog) done() error {
	d.mu.Lock()
	w := d.w
	d.w = nil
	d.mu.Unlock()
	if w == nil {
		return nil
	}
	fmt.Fprintln(w, "done")
	w.Close()
	if err := d.cmd.Wait(); err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	return nil
}
