package mailtest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// uidValidity returns mailbox's UIDVALIDITY over a fresh connection.
func uidValidity(t *testing.T, s *Stack, u User, mailbox string) uint32 {
	t.Helper()
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(u.Name, u.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatalf("status %s: %v", mailbox, err)
	}
	return st.UIDValidity
}

func TestStackMailboxes(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 30*time.Second)

	raw := testMessage(ivan.Name, olga.Name, "offer 17")
	if err := s.Append(ivan.Name, "Sent", raw, `\Seen`, "$Offer"); err != nil {
		t.Fatal(err)
	}
	got, err := s.WaitDelivered(ctx, ivan.Name, "Sent", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0], raw) {
		t.Fatalf("Sent holds %q, want exactly the appended message", got)
	}
	tm.step("append")

	// The flags were stored.
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ivan.Name, ivan.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Sent", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch flags: %v, %d messages", err, len(msgs))
	}
	for _, f := range []imap.Flag{imap.FlagSeen, "$Offer"} {
		if !slices.Contains(msgs[0].Flags, f) {
			t.Errorf("flags %v lack %s", msgs[0].Flags, f)
		}
	}
	c.Logout().Wait()

	// Delete and recreate: new UIDVALIDITY, empty mailbox.
	before := uidValidity(t, s, ivan, "Sent")
	if err := s.DeleteMailbox(ivan.Name, "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ivan.Name, "Sent"); err != nil {
		t.Fatal(err)
	}
	after := uidValidity(t, s, ivan, "Sent")
	if before == after {
		t.Errorf("UIDVALIDITY %d unchanged after delete + create", before)
	}
	if got, err := s.WaitDelivered(ctx, ivan.Name, "Sent", 0); err != nil || len(got) != 0 {
		t.Errorf("recreated Sent: %d messages, %v; want empty", len(got), err)
	}
	tm.step("delete + create")

	if err := s.CreateMailbox(ivan.Name, "Customers/Acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ivan.Name, "Customers/Acme"); err == nil {
		t.Error("creating an existing mailbox succeeded")
	}
	if err := s.DeleteMailbox(ivan.Name, "No/Such"); err == nil {
		t.Error("deleting a missing mailbox succeeded")
	}
	if err := s.Append("nobody@seller.test", "INBOX", raw); err == nil {
		t.Error("append for an unknown user succeeded")
	}
	tm.step("errors")
}

func TestStackUnknownUserBounces(t *testing.T) {
	t.Parallel()
	tm := newTimer(t)
	s := Start(t, twoUsers())
	tm.step("start")
	ctx := ctxT(t, 30*time.Second)

	// Accepted at SMTP time (the domain is ours), refused by LMTP, so a DSN
	// goes back to the sender, as from a real remote server.
	raw := testMessage(ivan.Name, "gone@buyer.test", "reminder to a gone address")
	if err := submit(ctx, s, ivan, []string{"gone@buyer.test"}, raw); err != nil {
		t.Fatalf("submission: %v", err)
	}
	got, err := s.WaitDelivered(ctx, ivan.Name, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	tm.step("bounce delivered")
	dsn := got[0]
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; gone@buyer.test", "Status: 5.", "Subject: reminder to a gone address"} {
		if !bytes.Contains(dsn, []byte(want)) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}

func TestStackTLSAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: []User{ivan}, TLS: true})
	ctx := ctxT(t, 30*time.Second)
	raw := testMessage(ivan.Name, ivan.Name, "plain auth")
	err := smtpSend(ctx, s.SubmissionAddr, nil, sasl.NewPlainClient("", ivan.Name, ivan.Password), ivan.Name, []string{ivan.Name}, raw)
	if err == nil {
		t.Fatal("AUTH without STARTTLS succeeded on a TLS stack")
	}
	var serr *smtp.SMTPError
	if errors.As(err, &serr) {
		t.Logf("refused as expected: %d %s", serr.Code, serr.Message)
	}
	if err := submit(ctx, s, ivan, []string{ivan.Name}, raw); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
}

func TestStackProxyCutsIMAP(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: []User{ivan}})
	p := NewProxy(t, s.IMAPAddr)
	c, err := imapclient.DialInsecure(p.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ivan.Name, ivan.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("client not closed 10s after Cut")
	}
	if err := c.Noop().Wait(); err == nil {
		t.Fatal("NOOP after Cut succeeded")
	}
	// A new connection through the proxy works.
	c2, err := imapclient.DialInsecure(p.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login(ivan.Name, ivan.Password).Wait(); err != nil {
		t.Fatal(err)
	}
}
