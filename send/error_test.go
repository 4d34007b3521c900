package send

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"testing"

	mail "github.com/wneessen/go-mail"

	"followupd/internal/smtptest"
)

func TestNewErrorSorting(t *testing.T) {
	reply := func(code int, msg string) error { return &textproto.Error{Code: code, Msg: msg} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		cmd       string
		err       error
		permanent bool
		code      int
		enhanced  string
		text      string
	}{
		{"rcpt 550", nil, CmdRcpt, reply(550, "5.1.1 <x@y>: Recipient address rejected"), true, 550, "5.1.1", "<x@y>: Recipient address rejected"},
		{"rcpt 450", nil, CmdRcpt, reply(450, "4.2.0 greylisted"), false, 450, "4.2.0", "greylisted"},
		{"rcpt 553 without enhanced", nil, CmdRcpt, reply(553, "mailbox name not allowed"), true, 553, "", "mailbox name not allowed"},
		{"data 554", nil, CmdData, reply(554, "5.5.1 no valid recipients"), true, 554, "5.5.1", "no valid recipients"},
		{"message 552 multi-line", nil, CmdMessage, reply(552, "5.3.4 message too big\n5.3.4 limit is 10MB"), true, 552, "5.3.4", "message too big 5.3.4 limit is 10MB"},
		{"message 421", nil, CmdMessage, reply(421, "4.3.2 shutting down"), false, 421, "4.3.2", "shutting down"},
		{"auth 535 at connect", nil, CmdAuth, fmt.Errorf("SMTP AUTH failed: %w", reply(535, "5.7.8 bad credentials")), false, 535, "5.7.8", "bad credentials"},
		{"530 at rcpt is auth", nil, CmdRcpt, reply(530, "5.7.0 Authentication required"), false, 530, "5.7.0", "Authentication required"},
		{"5.7.8 under 550 is auth", nil, CmdMessage, reply(550, "5.7.8 credentials expired"), false, 550, "5.7.8", "credentials expired"},
		{"mail from 553 is the account's", nil, CmdMail, reply(553, "5.7.1 sender not owned by user"), false, 553, "5.7.1", "sender not owned by user"},
		{"ehlo 554 at connect", nil, CmdConnect, reply(554, "5.7.1 go away"), false, 554, "5.7.1", "go away"},
		{"network error", nil, CmdRcpt, errors.New("read tcp: connection reset by peer"), false, 0, "", ""},
		{"cancelled", cancelled, CmdMessage, errors.New("use of closed network connection"), false, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			e := newError(ctx, "smtp.example:587", tc.cmd, "id@x", tc.err)
			if e.Permanent != tc.permanent || e.Code != tc.code || e.Enhanced != tc.enhanced || e.Text != tc.text || e.Command != tc.cmd || e.MessageID != "id@x" {
				t.Errorf("got %+v", *e)
			}
			if !errors.Is(e, tc.err) {
				t.Errorf("%v does not wrap %v", e, tc.err)
			}
			if tc.ctx != nil && !errors.Is(e, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", e)
			}
			if !strings.HasPrefix(e.Error(), "smtp smtp.example:587: "+tc.cmd+": ") {
				t.Errorf("Error() = %q", e.Error())
			}
			if strings.HasSuffix(e.Error(), "(permanent)") != tc.permanent {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
	// An *Error passes through unchanged.
	orig := &Error{Permanent: true, Code: 550}
	if got := newError(context.Background(), "a", CmdRcpt, "", fmt.Errorf("wrapped: %w", orig)); got != orig {
		t.Errorf("newError re-wrapped an *Error: %+v", got)
	}
}

// The classification also reads go-mail's own *mail.SendError, from a
// real go-mail Client.Send.
func TestNewErrorFromSendError(t *testing.T) {
	for _, tc := range []struct {
		code      int
		enhanced  string
		permanent bool
	}{
		{550, "5.1.1", true},
		{451, "4.2.1", false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			srv := startServer(t, smtptest.Options{})
			srv.FailRecipient("buyer@client.example", tc.code, tc.enhanced, "nope")
			c, err := mail.NewClient(srv.Host(), mail.WithPort(srv.Port()), mail.WithTLSPolicy(mail.NoTLS))
			if err != nil {
				t.Fatal(err)
			}
			m := mail.NewMsg()
			if err := m.From("ivan@seller.example"); err != nil {
				t.Fatal(err)
			}
			if err := m.To("buyer@client.example"); err != nil {
				t.Fatal(err)
			}
			m.Subject("x")
			m.SetBodyString(mail.TypeTextPlain, "x")
			sendErr := c.DialAndSendWithContext(context.Background(), m)
			var se *mail.SendError
			if !errors.As(sendErr, &se) {
				t.Fatalf("go-mail returned %T %v", sendErr, sendErr)
			}
			e := newError(context.Background(), srv.Addr(), CmdRcpt, "id@x", sendErr)
			if e.Permanent != tc.permanent || e.Code != tc.code || e.Enhanced != tc.enhanced {
				t.Errorf("got %+v", *e)
			}
		})
	}
}

func TestSplitEnhanced(t *testing.T) {
	for _, tc := range []struct{ in, enh, rest string }{
		{"5.1.1 no such user", "5.1.1", "no such user"},
		{"2.0.0 OK: queued as 123", "2.0.0", "OK: queued as 123"},
		{"4.7.0", "4.7.0", ""},
		{"no code here", "", "no code here"},
		{"5.1.1x not a code", "", "5.1.1x not a code"},
		{"3.1.1 wrong class", "", "3.1.1 wrong class"},
	} {
		enh, rest := splitEnhanced(tc.in)
		if enh != tc.enh || rest != tc.rest {
			t.Errorf("splitEnhanced(%q) = %q, %q; want %q, %q", tc.in, enh, rest, tc.enh, tc.rest)
		}
	}
}
