package interop_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one `followupd run` process whose stderr (JSON logs) is read
// line by line into lines.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output was read
	err  error         // cmd.Wait's result, set before done is closed
	out  *logBuffer    // everything it wrote
}

// logLine is one JSON log line of the binary.
type logLine map[string]any

func (l logLine) str(key string) string {
	v, ok := l[key]
	if !ok || v == nil {
		return ""
	}
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprint(v)
}

// startProc starts the built binary with args; each stderr line is copied
// to out and, when it is JSON, sent to lines (if not nil). extra adjusts
// the command (user, environment) before it starts.
func startProc(t *testing.T, lines chan<- logLine, out *logBuffer, extra func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if extra != nil {
		extra(cmd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s %v: %v", binPath, args, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			b := sc.Bytes()
			out.Write(append(append([]byte(nil), b...), '\n'))
			if lines == nil {
				continue
			}
			var l logLine
			if json.Unmarshal(b, &l) == nil {
				lines <- l
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// cleanEnv is the test's environment without systemd's notify variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "INVOCATION_ID=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// kill sends SIGKILL (if still running) and waits for the exit.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stillRunning is wait's result for a process that did not exit in time
// (it is killed then); -1 is a process ended by a signal.
const stillRunning = -2

// wait waits up to d for the process to exit on its own and returns its
// exit code.
func (p *proc) wait(d time.Duration) int {
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
		return stillRunning
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and waits up to d for a clean exit.
func (p *proc) stop(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(d); code != 0 {
		t.Errorf("followupd exited with %d after SIGTERM (-1: killed by the signal; %d: still running after %v)", code, stillRunning, d)
	}
}

// writeFile writes a file and fails the test on error.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// weekendWorkdays lists today and the next days in UTC that fall on a
// weekend as `workdays`, so a real-time test sends on any day of the week.
func weekendWorkdays() string {
	var ds []string
	now := time.Now().UTC()
	for i := 0; i < 3; i++ {
		d := now.AddDate(0, 0, i)
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			ds = append(ds, fmt.Sprintf("%q", d.Format("2006-01-02")))
		}
	}
	return "workdays = [" + strings.Join(ds, ", ") + "]"
}
