package mailtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = errors.New("mailtest: address already in use")

// dovecotProc is one running `dovecot -F`, in a process group of its own.
type dovecotProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

const dovecotConf = `# written by followupd/internal/mailtest
instance_name = mailtest-{{.ID}}
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {{.Dir}}/dovecot/run
state_dir = {{.Dir}}/dovecot/state
log_path = {{.Dir}}/dovecot/dovecot.log
info_log_path = {{.Dir}}/dovecot/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
hostname = mailtest.invalid
postmaster_address = postmaster@mailtest.invalid
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = {{.UID}}
mail_gid = {{.UID}}
first_valid_uid = 1000
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# No 2 s delay on a failed login, and no growing per-IP penalty (every test
# client is 127.0.0.1): tests exercise wrong passwords.
auth_failure_delay = 0
{{- if .TLS}}
ssl = yes
ssl_cert = <{{.Dir}}/tls/cert.pem
ssl_key = <{{.Dir}}/tls/key.pem
{{- if .DH}}
ssl_dh = <{{.DH}}
{{- end}}
{{- else}}
ssl = no
{{- end}}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {{.Dir}}/dovecot/passwd
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.UID}} home={{.Dir}}/mail/%Ld/%Ln
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = subscribe
    special_use = \Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \Sent
  }
  mailbox Junk {
    auto = subscribe
    special_use = \Junk
  }
  mailbox Trash {
    auto = subscribe
    special_use = \Trash
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.IMAP}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.IMAPS}}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTP}}
  }
}
service auth {
  unix_listener {{.Dir}}/dovecot/run/auth-postfix {
    mode = 0666
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocol imap {
  # The daemon, its tests and the helpers open many connections per user.
  mail_max_userip_connections = 200
}
{{- if .Conns}}
# Options.Connections: shared imap processes (one inotify instance per
# process, not per connection) and client limits above the connection count.
default_client_limit = {{.ClientLimit}}
service imap {
  client_limit = 100
  process_limit = {{.ProcessLimit}}
  service_count = 0
}
{{- end}}
`

func (s *Stack) writeDovecotConf() error {
	var passwd strings.Builder
	for name, pw := range s.users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s::::::\n", name, pw)
	}
	if err := os.WriteFile(s.path("dovecot", "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return fmt.Errorf("writing dovecot passwd: %w", err)
	}
	dh := "/usr/share/dovecot/dh.pem"
	if _, err := os.Stat(dh); err != nil {
		dh = ""
	}
	var b bytes.Buffer
	err := template.Must(template.New("dovecot.conf").Parse(dovecotConf)).Execute(&b, map[string]any{
		"ID":    filepath.Base(s.Dir),
		"Dir":   s.Dir,
		"UID":   mailUID,
		"TLS":   s.opt.TLS,
		"DH":    dh,
		"IMAP":  s.ports.imap,
		"IMAPS": s.ports.imaps,
		"LMTP":  s.ports.lmtp,
		// Options.Connections (0: Dovecot's defaults).
		"Conns":        s.opt.Connections,
		"ClientLimit":  max(5000, 2*s.opt.Connections),
		"ProcessLimit": s.opt.Connections/100 + 10,
	})
	if err != nil {
		return fmt.Errorf("rendering dovecot.conf: %w", err)
	}
	if err := os.WriteFile(s.path("dovecot", "dovecot.conf"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing dovecot.conf: %w", err)
	}
	return nil
}

// startDovecot writes the config and runs `dovecot -F` until IMAP greets.
func (s *Stack) startDovecot() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dovecot != nil {
		return errors.New("mailtest: dovecot already running")
	}
	if err := s.writeDovecotConf(); err != nil {
		return err
	}
	bin, err := lookBin("dovecot")
	if err != nil {
		return err
	}
	stderr, err := os.OpenFile(s.path("dovecot", "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening dovecot stderr log: %w", err)
	}
	defer stderr.Close()
	cmd := exec.Command(bin, "-F", "-c", s.path("dovecot", "dovecot.conf"))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// A group of its own, so stopping it can reach every child and nothing
	// else; Pdeathsig so a crashed test binary does not leave it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting dovecot: %w", err)
	}
	p := &dovecotProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.dovecot = p
	s.guard.tell(fmt.Sprintf("dovecot %d", cmd.Process.Pid))

	alive := func() error {
		select {
		case <-p.done:
			return fmt.Errorf("dovecot exited at start: %v", p.err)
		default:
			return nil
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	err = waitGreeting(s.IMAPAddr, "* OK", deadline, alive)
	if err == nil {
		err = waitGreeting(s.LMTPAddr, "220", deadline, alive)
	}
	if err != nil {
		if s.logContains("dovecot/dovecot.log", "Address already in use") ||
			s.logContains("dovecot/stderr.log", "Address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		if serr := s.stopDovecotLocked(); serr != nil {
			err = fmt.Errorf("%w (and stopping it: %v)", err, serr)
		}
		return fmt.Errorf("starting dovecot: %w", err)
	}
	return nil
}

// stopDovecot stops the running Dovecot, if any: SIGTERM to the master,
// then waits until no process of its group is left (SIGKILL to the group
// after a grace period), so its ports are free for a restart.
func (s *Stack) stopDovecot() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopDovecotLocked()
}

func (s *Stack) stopDovecotLocked() error {
	p := s.dovecot
	if p == nil {
		return nil
	}
	s.dovecot = nil
	pgid := p.cmd.Process.Pid
	defer s.guard.tell("nodovecot")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling dovecot pid %d: %w", pgid, err)
	}
	grace := time.After(10 * time.Second)
	select {
	case <-p.done:
	case <-grace:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Some children (log, stats, auth) outlive the master by seconds; they
	// are ours, and a restart wants their sockets, so after a short grace
	// they get SIGTERM, then SIGKILL.
	for _, step := range []struct {
		sig   syscall.Signal
		grace time.Duration
	}{{0, 300 * time.Millisecond}, {syscall.SIGTERM, 2 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		if step.sig != 0 {
			syscall.Kill(-pgid, step.sig)
		}
		deadline := time.Now().Add(step.grace)
		for groupAlive(pgid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !groupAlive(pgid) {
			return nil
		}
	}
	return fmt.Errorf("dovecot process group %d still alive after SIGKILL", pgid)
}

// groupAlive reports whether a live (non-zombie) process is in the process
// group: zombies reparented to a non-reaping pid 1 would fool kill(-pgid, 0).
func groupAlive(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid && pid > 0 {
			return true
		}
	}
	return false
}

func (s *Stack) logContains(file, substr string) bool {
	b, err := os.ReadFile(s.path(file))
	return err == nil && bytes.Contains(b, []byte(substr))
}

// StopDovecot stops Dovecot (IMAP and LMTP); the mail stays on disk.
// Postfix then defers mail for the test domains.
func (s *Stack) StopDovecot(t testing.TB) {
	t.Helper()
	t0 := time.Now()
	if err := s.stopDovecot(); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Logf("mailtest: dovecot stopped in %v", time.Since(t0).Round(time.Millisecond))
}

// StartDovecot starts Dovecot again on the same ports with the same mail.
func (s *Stack) StartDovecot(t testing.TB) {
	t.Helper()
	t0 := time.Now()
	if err := s.startDovecot(); err != nil {
		s.dumpLogs(t)
		t.Fatalf("mailtest: %v", err)
	}
	t.Logf("mailtest: dovecot started in %v", time.Since(t0).Round(time.Millisecond))
}
