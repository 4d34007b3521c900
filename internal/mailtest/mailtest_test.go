package mailtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var (
	ivan = User{Name: "ivan@seller.test", Password: "ivan-secret"}
	olga = User{Name: "olga@buyer.test", Password: "olga-secret"}
)

func twoUsers() Options { return Options{Users: []User{ivan, olga}} }

// timer logs how long each step of a test took.
type timer struct {
	t    testing.TB
	last time.Time
}

func newTimer(t testing.TB) *timer { return &timer{t: t, last: time.Now()} }

func (tm *timer) step(what string) {
	tm.t.Helper()
	now := time.Now()
	tm.t.Logf("timing: %s: %v", what, now.Sub(tm.last).Round(time.Millisecond))
	tm.last = now
}

func testMessage(from, to, subject string) []byte {
	id := fmt.Sprintf("<%d.%s@client.test>", time.Now().UnixNano(), strings.ReplaceAll(subject, " ", "-"))
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: " + id + "\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\n\r\nHello,\r\n.leading dot survives\r\n")
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// submit sends through the submission port with AUTH PLAIN.
func submit(ctx context.Context, s *Stack, u User, to []string, raw []byte) error {
	return smtpSend(ctx, s.SubmissionAddr, s.TLSConfig(), sasl.NewPlainClient("", u.Name, u.Password), u.Name, to, raw)
}

func TestStackIMAPLoginAndSpecialUse(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")

	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ivan.Name, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login(ivan.Name, ivan.Password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	tm.step("login")
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIdle, imap.CapSpecialUse, imap.CapUIDPlus, imap.CapMove, imap.CapCondStore, imap.CapQResync} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing; have %v", want, caps)
		}
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	for mbox, want := range map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Junk": imap.MailboxAttrJunk, "Trash": imap.MailboxAttrTrash} {
		got, ok := attrs[mbox]
		if !ok {
			t.Errorf("LIST lacks %s; got %v", mbox, attrs)
			continue
		}
		found := false
		for _, a := range got {
			found = found || a == want
		}
		if !found {
			t.Errorf("%s has attributes %v, want %s", mbox, got, want)
		}
	}
	if _, ok := attrs["INBOX"]; !ok {
		t.Errorf("LIST lacks INBOX; got %v", attrs)
	}
	tm.step("list")
}

func TestStackSendViaMX(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 30*time.Second)

	raw := testMessage(olga.Name, ivan.Name, "offer question")
	if err := s.Send(ctx, olga.Name, []string{ivan.Name}, raw); err != nil {
		t.Fatalf("send: %v", err)
	}
	tm.step("send via mx")
	got, err := s.WaitDelivered(ctx, ivan.Name, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	tm.step("delivered")
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	if !bytes.Contains(got[0], []byte("Subject: offer question")) || !bytes.Contains(got[0], []byte("\r\n.leading dot survives")) {
		t.Errorf("delivered message lacks subject or dotted line:\n%s", got[0])
	}
	if !bytes.Contains(got[0], []byte("Received:")) {
		t.Errorf("delivered message has no Received header:\n%s", got[0])
	}
	// Olga's INBOX stays empty.
	if msgs, err := s.WaitDelivered(ctx, olga.Name, "INBOX", 0); err != nil || len(msgs) != 0 {
		t.Errorf("olga's INBOX: %d messages, err %v; want 0", len(msgs), err)
	}

	// The MX relays nothing: a foreign domain is refused at RCPT.
	err = s.Send(ctx, olga.Name, []string{"someone@elsewhere.example"}, raw)
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) || serr.Code != 554 && serr.Code != 550 {
		t.Errorf("relay attempt: err %v, want a 5xx relay refusal", err)
	}
	tm.step("relay refused")
}

func TestStackSubmissionAuth(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 30*time.Second)

	raw := testMessage(ivan.Name, olga.Name, "reminder")
	// Without AUTH the submission port refuses.
	err := smtpSend(ctx, s.SubmissionAddr, nil, nil, ivan.Name, []string{olga.Name}, raw)
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) || serr.Code/100 != 5 {
		t.Fatalf("unauthenticated submission: err %v, want 5xx", err)
	}
	bad := ivan
	bad.Password = "nope"
	if err := submit(ctx, s, bad, []string{olga.Name}, raw); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
	tm.step("refusals")
	if err := submit(ctx, s, ivan, []string{olga.Name}, raw); err != nil {
		t.Fatalf("submission: %v", err)
	}
	tm.step("submit")
	got, err := s.WaitDelivered(ctx, olga.Name, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	tm.step("delivered")
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: reminder")) {
		t.Fatalf("olga's INBOX: %q", got)
	}
}

func TestStackPolicy(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 30*time.Second)
	raw := testMessage(ivan.Name, olga.Name, "policy")

	for _, tc := range []struct {
		name   string
		action string
		code   int
	}{
		{"permanent", "550 5.1.1 no such user", 550},
		{"temporary", "451 4.7.1 try later", 451},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetPolicy(olga.Name, tc.action)
			check := func(port string, err error) {
				t.Helper()
				var serr *smtp.SMTPError
				if !errors.As(err, &serr) || serr.Code != tc.code {
					t.Errorf("%s: err %v, want code %d", port, err, tc.code)
				}
			}
			check("mx", s.Send(ctx, ivan.Name, []string{olga.Name}, raw))
			check("submission", submit(ctx, s, ivan, []string{olga.Name}, raw))
			// Other recipients are untouched.
			if err := s.Send(ctx, olga.Name, []string{ivan.Name}, raw); err != nil {
				t.Errorf("send to an unaffected recipient: %v", err)
			}
			tm.step("policy " + tc.name)
		})
	}
	s.SetPolicy(olga.Name, "")
	if err := submit(ctx, s, ivan, []string{olga.Name}, raw); err != nil {
		t.Fatalf("after clearing the policy: %v", err)
	}
	if _, err := s.WaitDelivered(ctx, olga.Name, "INBOX", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitDelivered(ctx, ivan.Name, "INBOX", 2); err != nil {
		t.Fatal(err)
	}
	tm.step("policy cleared, delivered")
}

func TestStackDeferredUntilDovecotBack(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 60*time.Second)

	if err := s.Append(ivan.Name, "Sent", testMessage(ivan.Name, olga.Name, "kept"), `\Seen`); err != nil {
		t.Fatal(err)
	}
	s.StopDovecot(t)
	tm.step("stop dovecot")
	raw := testMessage(olga.Name, ivan.Name, "while down")
	if err := s.Send(ctx, olga.Name, []string{ivan.Name}, raw); err != nil {
		t.Fatalf("postfix should accept while dovecot is down: %v", err)
	}
	tm.step("send while down")
	// Wait until Postfix tried LMTP and deferred.
	for !strings.Contains(s.Queue(t), ivan.Name) || !s.logContains("postfix/maillog", "status=deferred") {
		if ctx.Err() != nil {
			t.Fatalf("mail never deferred; queue:\n%s", s.Queue(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.step("deferred")
	s.StartDovecot(t)
	tm.step("start dovecot")
	s.FlushQueue(t)
	got, err := s.WaitDelivered(ctx, ivan.Name, "INBOX", 1)
	if err != nil {
		t.Fatalf("%v; queue:\n%s", err, s.Queue(t))
	}
	tm.step("flushed and delivered")
	if !bytes.Contains(got[0], []byte("Subject: while down")) {
		t.Errorf("delivered:\n%s", got[0])
	}
	if sent, err := s.WaitDelivered(ctx, ivan.Name, "Sent", 1); err != nil || !bytes.Contains(sent[0], []byte("Subject: kept")) {
		t.Errorf("Sent after restart: %q, %v; want the appended message kept", sent, err)
	}
}

func TestStackTLS(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, Options{Users: []User{ivan, olga}, TLS: true})
	tm.step("start")
	if s.CAFile == "" || s.IMAPSAddr == "" || s.SMTPSAddr == "" {
		t.Fatalf("TLS stack lacks CAFile/IMAPSAddr/SMTPSAddr: %+v", s)
	}
	ctx := ctxT(t, 30*time.Second)

	c, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: s.TLSConfig()})
	if err != nil {
		t.Fatalf("imaps: %v", err)
	}
	defer c.Close()
	if err := c.Login(ivan.Name, ivan.Password).Wait(); err != nil {
		t.Fatalf("imaps login: %v", err)
	}
	tm.step("imaps login")
	// Without the CA the certificate is refused.
	if c2, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{}}); err == nil {
		if err := c2.WaitGreeting(); err == nil {
			t.Error("imaps with the system roots trusted the test certificate")
		}
		c2.Close()
	}
	c3, err := imapclient.DialStartTLS(s.IMAPAddr, &imapclient.Options{TLSConfig: s.TLSConfig()})
	if err != nil {
		t.Fatalf("imap starttls: %v", err)
	}
	defer c3.Close()
	if err := c3.Login(olga.Name, olga.Password).Wait(); err != nil {
		t.Fatalf("starttls login: %v", err)
	}
	tm.step("imap starttls login")

	raw := testMessage(ivan.Name, olga.Name, "over tls")
	if err := submit(ctx, s, ivan, []string{olga.Name}, raw); err != nil {
		t.Fatalf("submission with STARTTLS: %v", err)
	}
	// SMTPS: implicit TLS.
	sc, err := smtp.DialTLS(s.SMTPSAddr, s.TLSConfig())
	if err != nil {
		t.Fatalf("smtps: %v", err)
	}
	if err := sc.Auth(sasl.NewPlainClient("", ivan.Name, ivan.Password)); err != nil {
		t.Fatalf("smtps auth: %v", err)
	}
	if err := sc.SendMail(ivan.Name, []string{olga.Name}, bytes.NewReader(testMessage(ivan.Name, olga.Name, "over smtps"))); err != nil {
		t.Fatalf("smtps send: %v", err)
	}
	sc.Close()
	tm.step("submission starttls + smtps")
	if _, err := s.WaitDelivered(ctx, olga.Name, "INBOX", 2); err != nil {
		t.Fatal(err)
	}
	tm.step("delivered")
}

func TestStackPostfixRestart(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 60*time.Second)

	s.StopPostfix(t)
	tm.step("stop postfix")
	if err := s.Send(ctx, olga.Name, []string{ivan.Name}, testMessage(olga.Name, ivan.Name, "refused")); err == nil {
		t.Fatal("send with postfix stopped succeeded")
	}
	s.StopPostfix(t) // stopping twice is harmless
	s.StartPostfix(t)
	tm.step("start postfix")
	if err := s.Send(ctx, olga.Name, []string{ivan.Name}, testMessage(olga.Name, ivan.Name, "after restart")); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	got, err := s.WaitDelivered(ctx, ivan.Name, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: after restart")) {
		t.Fatalf("INBOX: %q", got)
	}
	tm.step("delivered")
}
