package send

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"followupd/config"
	"followupd/internal/mailtest"
	"followupd/message"
)

// The same submissions against a real Postfix (submission and SMTPS, AUTH
// against Dovecot) via internal/mailtest. Skipped without root or the
// servers; CI=true makes a skip a failure there.
func TestInteropPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postfix and Dovecot")
	}
	ivan := mailtest.User{Name: "ivan@seller.test", Password: "ivan-secret"}
	olga := mailtest.User{Name: "olga@buyer.test", Password: "olga-secret"}
	stack := mailtest.Start(t, mailtest.Options{Users: []mailtest.User{ivan, olga}, TLS: true})

	acct := func(addr string, sec config.Security, ca string) *config.Account {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		return &config.Account{
			Name: "ivan", Address: ivan.Name, DisplayName: "Иван Петров",
			SMTP: config.Server{Host: host, Port: p, Security: sec, CAFile: ca},
		}
	}
	reminder := func(step int) (*Reminder, []byte) {
		r := testReminder()
		r.From = message.Address{Name: "Иван Петров", Addr: ivan.Name}
		r.To = []message.Address{{Name: "Ольга", Addr: olga.Name}}
		r.Cc = nil
		r.Step = step
		r.MessageID = message.NewOwnMessageID("seller.test", r.FollowUpID, step)
		raw, err := Build(r)
		if err != nil {
			t.Fatal(err)
		}
		return r, raw
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	delivered := 0
	for _, tc := range []struct {
		name string
		addr string
		sec  config.Security
	}{
		{"starttls submission", stack.SubmissionAddr, config.SecurityStartTLS},
		{"implicit tls", stack.SMTPSAddr, config.SecurityTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := submitter(t, acct(tc.addr, tc.sec, stack.CAFile), ivan.Password)
			r, raw := reminder(delivered + 1)
			if err := sub.Submit(ctx, r, raw); err != nil {
				t.Fatal(err)
			}
			delivered++
			msgs, err := stack.WaitDelivered(ctx, olga.Name, "INBOX", delivered)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, m := range msgs {
				if bytes.Contains(m, []byte("<"+r.MessageID+">")) {
					got = m
				}
			}
			if got == nil {
				t.Fatalf("reminder %s not in olga's INBOX (%d messages)", r.MessageID, len(msgs))
			}
			// Normalise line ends whatever the store kept.
			got = bytes.ReplaceAll(bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			p := parse(t, got)
			h := p.hdr
			if h.Get("In-Reply-To") != "<orig-42@seller.example>" ||
				h.Get("References") != "<root@client.example> <orig-42@seller.example>" ||
				h.Get(message.OwnHeader) != "id=7; step="+strconv.Itoa(r.Step) ||
				decodeHeader(t, h.Get("Subject")) != r.Subject {
				t.Errorf("delivered headers: %v", h)
			}
			if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Иван Петров" || from[0].Address != ivan.Name {
				t.Errorf("From %q: %v", h.Get("From"), err)
			}
			if p.text != r.Text {
				t.Errorf("text %q, want %q", p.text, r.Text)
			}
		})
	}

	fail := func(t *testing.T, a *config.Account, password string) *Error {
		t.Helper()
		r, raw := reminder(9)
		e := asError(t, submitter(t, a, password).Submit(ctx, r, raw))
		t.Logf("error: %v", e)
		return e
	}
	t.Run("wrong password", func(t *testing.T) {
		e := fail(t, acct(stack.SubmissionAddr, config.SecurityStartTLS, stack.CAFile), "wrong")
		if e.Permanent || e.Command != CmdAuth || e.Code != 535 {
			t.Errorf("got %+v", *e)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		e := fail(t, acct(stack.SMTPSAddr, config.SecurityTLS, ""), ivan.Password)
		if e.Permanent || e.Command != CmdConnect || !bytes.Contains([]byte(e.Error()), []byte("set smtp.ca_file")) {
			t.Errorf("got %+v", *e)
		}
	})
	t.Run("rcpt deferred", func(t *testing.T) {
		stack.SetPolicy(olga.Name, "451 4.7.1 try later")
		defer stack.SetPolicy(olga.Name, "")
		e := fail(t, acct(stack.SubmissionAddr, config.SecurityStartTLS, stack.CAFile), ivan.Password)
		if e.Permanent || e.Command != CmdRcpt || e.Code != 451 || e.Enhanced != "4.7.1" {
			t.Errorf("got %+v", *e)
		}
	})
	t.Run("rcpt refused", func(t *testing.T) {
		stack.SetPolicy(olga.Name, "550 5.1.1 no such user")
		defer stack.SetPolicy(olga.Name, "")
		e := fail(t, acct(stack.SubmissionAddr, config.SecurityStartTLS, stack.CAFile), ivan.Password)
		if !e.Permanent || e.Command != CmdRcpt || e.Code != 550 || e.Enhanced != "5.1.1" || len(e.Rcpts) != 1 {
			t.Errorf("got %+v", *e)
		}
	})
}
