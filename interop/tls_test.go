package interop_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/daemon"
	"followupd/internal/mailtest"
)

// Scenario 9: with Dovecot and Postfix on a self-signed certificate, tls
// (IMAPS, SMTPS) and starttls work when ca_file names the CA and fail with
// a clear error when it does not; security = "none" is refused for a
// non-loopback host; the password never appears in the logs.
func TestScenario9TLS(t *testing.T) {
	begin := time.Now()
	var rb [8]byte
	if _, err := rand.Read(rb[:]); err != nil {
		t.Fatal(err)
	}
	pass := "tls-Secret-" + hex.EncodeToString(rb[:])
	w := newWorld(t, mailtest.Options{TLS: true, Users: users(pass, ivan, maria, anna)})
	ca := w.s.CAFile
	tlsAcct := func(addr, caFile string, smtpCA string) acctSpec {
		return acctSpec{addr: addr,
			imap: endpoint{addr: w.s.IMAPSAddr, security: "tls", ca: caFile},
			smtp: endpoint{addr: w.s.SMTPSAddr, security: "tls", ca: smtpCA}}
	}
	startTLSAcct := func(addr, caFile, smtpCA string) acctSpec {
		return acctSpec{addr: addr,
			imap: endpoint{addr: w.s.IMAPAddr, security: "starttls", ca: caFile},
			smtp: endpoint{addr: w.s.SubmissionAddr, security: "starttls", ca: smtpCA}}
	}
	opts := func() daemon.Options {
		o := w.daemonOptions()
		o.IMAPDebug = w.logs // the protocol trace too: it must not carry the password either
		return o
	}

	// With ca_file: Ivan on implicit TLS, Maria on STARTTLS, end to end.
	d, stop := w.start(w.config("", offerRules, tlsAcct(ivan, ca, ca), startTLSAcct(maria, ca, ca)), opts())
	select {
	case <-d.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("daemon with ca_file not ready within 20s")
	}
	start := w.clk.Now()
	w.offer(ivan, anna, "s9-offer-i@seller.test", "Offer over TLS", start)
	w.offer(maria, anna, "s9-offer-m@seller.test", "Offer over STARTTLS", start)
	w.expect("tracked", "s9-offer-i@seller.test")
	w.expect("tracked", "s9-offer-m@seller.test")
	w.advanceTo(start.AddDate(0, 0, 3))
	w.expect("sent", "s9-offer-i@seller.test")
	w.expect("sent", "s9-offer-m@seller.test")
	from := map[string]bool{}
	for _, r := range own(w.exactly(anna, "INBOX", 4, 2)) {
		from[r.From[0].Addr] = true
	}
	if !from[ivan] || !from[maria] {
		t.Errorf("reminders from %v, want one from each of %s (tls) and %s (starttls)", from, ivan, maria)
	}
	stop()
	t.Logf("scenario 9: tls + starttls with ca_file: tracked and sent, %v", time.Since(begin).Round(time.Millisecond))

	// IMAP without ca_file: the watcher says what to set, and never gets ready.
	d, stop = w.start(w.config("", offerRules, tlsAcct(ivan, "", ca), startTLSAcct(maria, "", ca)), opts())
	limit := w.clk.Now().Add(time.Hour)
	for _, acct := range []string{"account=ivan", "account=maria"} {
		ok := w.waitLogLine(10*time.Second, limit, acct, "certificate signed by unknown authority", "set imap.ca_file")
		if !ok {
			t.Errorf("no clear TLS error for %s without imap.ca_file in the log", acct)
		}
	}
	select {
	case <-d.Ready():
		t.Error("daemon ready although the IMAP certificate cannot be verified")
	default:
	}
	stop()

	// SMTP without ca_file: the reminder is not sent, and the failure says
	// what to set.
	d, stop = w.start(w.config("", offerRules, tlsAcct(ivan, ca, ""), startTLSAcct(maria, ca, "")), opts())
	select {
	case <-d.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("daemon not ready within 20s")
	}
	at := w.clk.Now()
	w.offer(ivan, anna, "s9-offer-i2@seller.test", "Second offer over TLS", at)
	w.offer(maria, anna, "s9-offer-m2@seller.test", "Second offer over STARTTLS", at)
	w.expect("tracked", "s9-offer-i2@seller.test")
	w.expect("tracked", "s9-offer-m2@seller.test")
	w.advanceTo(w.clk.Now().AddDate(0, 0, 5))
	for _, id := range []string{"s9-offer-i2@seller.test", "s9-offer-m2@seller.test"} {
		ev := w.expectOneOf(id, "retry", "failed")
		if !strings.Contains(ev.Text, "smtp.ca_file") {
			t.Errorf("%s: %s %q, want it to say to set smtp.ca_file", id, ev.Kind, ev.Text)
		}
	}
	stop()
	w.exactly(anna, "INBOX", 6, 2) // two more offers, no more reminders

	// Plain text towards a non-loopback host is refused by the config.
	_, err := config.Parse(filepath.Join(w.dir, "insecure.toml"), []byte(`
state_dir = "/tmp/x"
[[account]]
address = "ivan@seller.test"
password_env = "X"
imap = { host = "mail.seller.test", port = 143, security = "none" }
smtp = { host = "mail.seller.test", port = 587, security = "starttls" }
[[rule]]
name = "offer"
match.subject = ['offer']
  [[rule.step]]
  after = "1 business day"
  template = "t"
[template.t]
body = "x"
`))
	if err == nil || !strings.Contains(err.Error(), "imap.security") || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("security = none towards mail.seller.test: err %v, want a clear refusal naming imap.security", err)
	}

	// The password, raw or as AUTH PLAIN, is nowhere in the logs.
	logs := w.logs.String()
	if !strings.Contains(logs, "IDLE") || !strings.Contains(logs, "ivan@seller.test") {
		t.Fatalf("the log holds no IMAP trace; the password check would prove nothing")
	}
	for _, secret := range []string{
		pass,
		base64.StdEncoding.EncodeToString([]byte("\x00" + ivan + "\x00" + pass)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + maria + "\x00" + pass)),
		base64.StdEncoding.EncodeToString([]byte(pass)),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs (%d bytes, with the IMAP trace) contain the password (as %q)", len(logs), secret)
		}
	}
	t.Logf("scenario 9: %d bytes of daemon log and IMAP trace checked: no password", len(logs))
	took(t, 9, "TLS/STARTTLS with and without ca_file, insecure refused, no password in logs", begin)
}

// waitLogLine waits for a log line holding every one of parts.
func (w *world) waitLogLine(timeout time.Duration, limit time.Time, parts ...string) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(w.logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		w.pump(limit)
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// expectOneOf waits for the first event about msgid whose kind is one of kinds.
func (w *world) expectOneOf(msgid string, kinds ...string) daemon.Event {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, ev := range w.seen {
			for _, k := range kinds {
				if ev.Kind == k && ev.MessageID == msgid {
					w.seen = append(w.seen[:i:i], w.seen[i+1:]...)
					return ev
				}
			}
		}
		select {
		case ev := <-w.events:
			w.t.Logf("event %s account=%s id=%d step=%d %s", ev.Kind, ev.Account, ev.FollowUp, ev.Step, ev.Text)
			w.seen = append(w.seen, ev)
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.t.Fatalf("no %v event for %s within 15s", kinds, msgid)
	return daemon.Event{}
}
