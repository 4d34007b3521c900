package mailtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

const postfixMainCf = `# written by followupd/internal/mailtest
compatibility_level = 3.6
queue_directory = {{.Dir}}/postfix/queue
data_directory = {{.Dir}}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.mailtest.invalid
mydomain = mailtest.invalid
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
relay_domains =
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = $myhostname ESMTP mailtest
maillog_file = {{.Dir}}/postfix/maillog
maillog_file_prefixes = {{.Dir}}
service_throttle_time = 1s
in_flow_delay = 0s
smtpd_error_sleep_time = 0s

# The test domains go to Dovecot over LMTP. Unknown users are accepted here
# and bounced by Dovecot's LMTP, so a DSN reaches the sender.
virtual_mailbox_domains = {{.Domains}}
virtual_mailbox_maps = static:mailtest
virtual_transport = lmtp:inet:127.0.0.1:{{.LMTP}}
# Nothing leaves the machine: other domains bounce.
default_transport = error:5.1.2 mailtest delivers only to its test domains
relay_transport = error:5.1.2 mailtest delivers only to its test domains

# The MX port: no relaying, no AUTH. The policy server answers per recipient.
smtpd_sasl_auth_enable = no
smtpd_sasl_type = dovecot
smtpd_sasl_path = {{.Dir}}/dovecot/run/auth-postfix
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service inet:{{.Policy}}, reject_unauth_destination
{{- if .TLS}}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {{.Dir}}/tls/cert.pem
smtpd_tls_key_file = {{.Dir}}/tls/key.pem
smtpd_tls_loglevel = 1
{{- else}}
smtpd_tls_security_level = none
{{- end}}
`

const postfixMasterCf = `# written by followupd/internal/mailtest; chroot (5th column) n everywhere
127.0.0.1:{{.MX}} inet n - n - - smtpd
  -o syslog_name=postfix/mx
127.0.0.1:{{.Submission}} inet n - n - - smtpd
  -o syslog_name=postfix/submission
{{.SubmissionOpts}}
{{- if .TLS}}
127.0.0.1:{{.SMTPS}} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
{{.SubmissionOpts}}
{{- end}}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// submissionOpts enables SASL on the submission ports only, never globally.
func (s *Stack) submissionOpts() string {
	opts := []string{
		"smtpd_sasl_auth_enable=yes",
		"smtpd_client_restrictions=permit_sasl_authenticated,reject",
		"smtpd_relay_restrictions=permit_sasl_authenticated,reject",
		// Commas separate the tokens like spaces; -o values take no spaces.
		"smtpd_recipient_restrictions=check_policy_service,inet:" + s.policy.Addr() + ",permit_sasl_authenticated,reject",
	}
	if s.opt.TLS {
		opts = append(opts, "smtpd_tls_auth_only=yes")
	}
	var b strings.Builder
	for i, o := range opts {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  -o " + o)
	}
	return b.String()
}

func (s *Stack) writePostfixConf() error {
	data := map[string]any{
		"Dir":            s.Dir,
		"Domains":        strings.Join(s.domains, " "),
		"LMTP":           s.ports.lmtp,
		"Policy":         s.policy.Addr(),
		"TLS":            s.opt.TLS,
		"MX":             s.ports.mx,
		"Submission":     s.ports.submission,
		"SMTPS":          s.ports.smtps,
		"SubmissionOpts": s.submissionOpts(),
	}
	// Backdated: Postfix rereads config files younger than its start, which
	// costs seconds.
	old := time.Now().Add(-time.Minute)
	for name, text := range map[string]string{"main.cf": postfixMainCf, "master.cf": postfixMasterCf} {
		var b bytes.Buffer
		if err := template.Must(template.New(name).Parse(text)).Execute(&b, data); err != nil {
			return fmt.Errorf("rendering postfix %s: %w", name, err)
		}
		p := s.path("postfix", name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing postfix %s: %w", name, err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return fmt.Errorf("backdating postfix %s: %w", name, err)
		}
	}
	if err := os.Chown(s.path("postfix", "data"), postfixUID(), -1); err != nil {
		return fmt.Errorf("chown postfix data_directory: %w", err)
	}
	return nil
}

// postfixUID is the uid of the postfix user, or -1 (no change) if unknown.
func postfixUID() int {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == "postfix" {
			if uid, err := strconv.Atoi(f[2]); err == nil {
				return uid
			}
		}
	}
	return -1
}

// postfixCmd runs a Postfix tool on this stack's config directory.
func (s *Stack) postfixCmd(name string, args ...string) ([]byte, error) {
	bin, err := lookBin(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-c", s.path("postfix")}, args...)...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+s.path("postfix"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

func (s *Stack) startPostfix() error {
	if err := s.writePostfixConf(); err != nil {
		return err
	}
	if _, err := s.postfixCmd("postfix", "start"); err != nil {
		if strings.Contains(err.Error(), "in use") || s.logContains("postfix/maillog", "Address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return fmt.Errorf("starting postfix: %w", err)
	}
	alive := func() error {
		if s.postfixPid() == 0 {
			return errors.New("postfix master not running")
		}
		return nil
	}
	deadline := time.Now().Add(15 * time.Second)
	err := waitGreeting(s.MXAddr, "220", deadline, alive)
	if err == nil {
		err = waitGreeting(s.SubmissionAddr, "220", deadline, alive)
	}
	if err != nil {
		if s.logContains("postfix/maillog", "Address already in use") {
			err = fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		if serr := s.stopPostfix(); serr != nil {
			err = fmt.Errorf("%w (and stopping it: %v)", err, serr)
		}
		return fmt.Errorf("starting postfix: %w", err)
	}
	return nil
}

// postfixPid is the pid of this stack's running Postfix master, or 0.
func (s *Stack) postfixPid() int {
	b, err := os.ReadFile(s.path("postfix", "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	// The pid file outlives the master; check it is still a Postfix master.
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "master" {
		return 0
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 0 && f[0] == "Z" {
				return 0
			}
		}
	}
	return pid
}

// stopPostfix stops this stack's Postfix if it runs: `postfix stop`, then
// SIGTERM and SIGKILL to the master's pid if it is still there.
func (s *Stack) stopPostfix() error {
	pid := s.postfixPid()
	if pid == 0 {
		return nil
	}
	_, stopErr := s.postfixCmd("postfix", "stop")
	deadline := time.Now().Add(10 * time.Second)
	sig := syscall.SIGTERM
	for s.postfixPid() != 0 {
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("postfix master pid %d survives SIGKILL (postfix stop: %v)", pid, stopErr)
			}
			sig = syscall.SIGKILL
			deadline = time.Now().Add(5 * time.Second)
		}
		if stopErr != nil || sig == syscall.SIGKILL {
			syscall.Kill(pid, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// StopPostfix stops Postfix; its queue stays on disk.
func (s *Stack) StopPostfix(t testing.TB) {
	t.Helper()
	t0 := time.Now()
	if err := s.stopPostfix(); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Logf("mailtest: postfix stopped in %v", time.Since(t0).Round(time.Millisecond))
}

// StartPostfix starts Postfix again on the same ports with the same queue.
func (s *Stack) StartPostfix(t testing.TB) {
	t.Helper()
	t0 := time.Now()
	if err := s.startPostfix(); err != nil {
		s.dumpLogs(t)
		t.Fatalf("mailtest: %v", err)
	}
	t.Logf("mailtest: postfix started in %v", time.Since(t0).Round(time.Millisecond))
}

// FlushQueue asks Postfix to retry all deferred mail now (`postqueue -f`),
// e.g. after StartDovecot. Delivery itself is asynchronous: follow with
// WaitDelivered.
func (s *Stack) FlushQueue(t testing.TB) {
	t.Helper()
	if _, err := s.postfixCmd("postqueue", "-f"); err != nil {
		t.Fatalf("mailtest: flushing queue: %v", err)
	}
}

// Queue returns Postfix's queue listing (`postqueue -p`), for assertions
// and failure messages.
func (s *Stack) Queue(t testing.TB) string {
	t.Helper()
	out, err := s.postfixCmd("postqueue", "-p")
	if err != nil {
		t.Fatalf("mailtest: listing queue: %v", err)
	}
	return string(out)
}
