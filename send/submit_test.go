package send

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/internal/smtptest"
)

// testLogger sends log lines to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func startServer(t *testing.T, opt smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.Start("127.0.0.1:0", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing smtptest: %v", err)
		}
	})
	return s
}

func account(host string, port int, sec config.Security) *config.Account {
	return &config.Account{
		Name:     "sales",
		Address:  "ivan@seller.example",
		Username: "ivan",
		SMTP:     config.Server{Host: host, Port: port, Security: sec},
	}
}

func submitter(t *testing.T, acct *config.Account, password string) *Submitter {
	t.Helper()
	s, err := NewSubmitter(acct, password, Options{Logger: testLogger(t), Timeout: 10 * time.Second, HeloName: "client.test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func built(t *testing.T) (*Reminder, []byte) {
	t.Helper()
	r := testReminder()
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, raw
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Submit succeeded, want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not *send.Error", err, err)
	}
	return e
}

func TestSubmitDelivers(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"ivan": "pw"}})
	sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), "pw")
	r, raw := built(t)
	r.Cc = append(r.Cc, r.To[0]) // duplicates go once
	r.Cc[len(r.Cc)-1].Addr = "BUYER@client.example"

	if err := sub.Submit(context.Background(), r, raw); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "ivan@seller.example" || strings.Join(m.To, ",") != "buyer@client.example,boss@client.example" || m.User != "ivan" {
		t.Errorf("envelope from %q to %q user %q", m.From, m.To, m.User)
	}
	if !bytes.Equal(m.Data, raw) {
		t.Errorf("server got other bytes than Build made:\n%s\n---\n%s", m.Data, raw)
	}
	// What arrived is threaded.
	p := parse(t, m.Data)
	if p.hdr.Get("In-Reply-To") != "<orig-42@seller.example>" ||
		!strings.HasSuffix(p.hdr.Get("References"), "<orig-42@seller.example>") ||
		decodeHeader(t, p.hdr.Get("Subject")) != "Re: Коммерческое предложение №42" ||
		p.hdr.Get("X-Followupd") != "id=7; step=2" ||
		p.hdr.Get("Message-ID") != "<"+r.MessageID+">" {
		t.Errorf("arrived headers: %v", p.hdr)
	}
	from, _ := p.hdr.AddressList("From")
	if len(from) != 1 || from[0].Name != "Иван Петров" {
		t.Errorf("From %q", p.hdr.Get("From"))
	}
}

// A leading dot in the body must survive SMTP dot-stuffing.
func TestSubmitDotStuffing(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), "")
	r := testReminder()
	r.Text = ".\n..hidden\nend\n"
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Submit(context.Background(), r, raw); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages()[0].Data; !bytes.Equal(got, raw) {
		t.Errorf("got\n%q\nwant\n%q", got, raw)
	}
}

func TestSubmitFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		password  string
		users     map[string]string
		setup     func(s *smtptest.Server)
		permanent bool
		cmd       string
		code      int
		enhanced  string
		text      string
		rcpts     []string
	}{
		{name: "rcpt 4xx", setup: func(s *smtptest.Server) { s.FailRecipient("buyer@client.example", 451, "4.2.1", "mailbox busy") },
			cmd: CmdRcpt, code: 451, enhanced: "4.2.1", text: "mailbox busy", rcpts: []string{"buyer@client.example"}},
		{name: "rcpt 5xx", setup: func(s *smtptest.Server) { s.FailRecipient("buyer@client.example", 550, "5.1.1", "no such user") },
			permanent: true, cmd: CmdRcpt, code: 550, enhanced: "5.1.1", text: "no such user", rcpts: []string{"buyer@client.example"}},
		{name: "one cc 5xx, one 4xx: permanent wins", setup: func(s *smtptest.Server) {
			s.FailRecipient("buyer@client.example", 452, "4.2.2", "over quota")
			s.FailRecipient("boss@client.example", 550, "5.1.1", "gone")
		}, permanent: true, cmd: CmdRcpt, code: 550, enhanced: "5.1.1", text: "gone", rcpts: []string{"buyer@client.example", "boss@client.example"}},
		{name: "data 4xx", setup: func(s *smtptest.Server) { s.FailNext(1, 451, "greylisted") },
			cmd: CmdMessage, code: 451, enhanced: "4.0.0", text: "greylisted"},
		{name: "data 5xx", setup: func(s *smtptest.Server) { s.FailNext(1, 554, "rejected as spam") },
			permanent: true, cmd: CmdMessage, code: 554, enhanced: "5.0.0", text: "rejected as spam"},
		{name: "wrong password", password: "wrong", users: map[string]string{"ivan": "pw"},
			cmd: CmdAuth, code: 535, enhanced: "5.7.8", text: "Authentication failed"},
		{name: "auth required, no password", users: map[string]string{"ivan": "pw"},
			cmd: CmdMail, code: 530, enhanced: "5.7.0", text: "Authentication required"},
		{name: "password but server has no AUTH", password: "pw", cmd: CmdAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, smtptest.Options{Users: tc.users})
			if tc.setup != nil {
				tc.setup(srv)
			}
			sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), tc.password)
			r, raw := built(t)
			e := asError(t, sub.Submit(context.Background(), r, raw))
			t.Logf("error: %v", e)
			if e.Permanent != tc.permanent || e.Command != tc.cmd || e.Code != tc.code ||
				e.Enhanced != tc.enhanced || e.Text != tc.text || e.MessageID != r.MessageID || e.MaybeSent {
				t.Errorf("got %+v", *e)
			}
			if strings.Join(e.Rcpts, ",") != strings.Join(tc.rcpts, ",") {
				t.Errorf("Rcpts = %q, want %q", e.Rcpts, tc.rcpts)
			}
			if IsPermanent(e) != tc.permanent {
				t.Errorf("IsPermanent = %v", IsPermanent(e))
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
}

func TestSubmitServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	sub := submitter(t, account("127.0.0.1", port, config.SecurityNone), "")
	r, raw := built(t)
	e := asError(t, sub.Submit(context.Background(), r, raw))
	if e.Permanent || e.Code != 0 || e.Command != CmdConnect || e.MaybeSent {
		t.Errorf("got %+v", *e)
	}
	if !strings.Contains(e.Error(), "127.0.0.1:") {
		t.Errorf("error does not name the server: %v", e)
	}
}

// A server that accepts TCP but never greets: cancelling ctx must end
// Submit at once, not after the timeout.
func TestSubmitCancelWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	acct := account("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, config.SecurityNone)
	sub, err := NewSubmitter(acct, "", Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r, raw := built(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	e := asError(t, sub.Submit(ctx, r, raw))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Submit took %v after cancel", d)
	}
	if !errors.Is(e, context.Canceled) || e.Permanent || e.MaybeSent {
		t.Errorf("got %+v (%v)", *e, e)
	}
}

// Cancelled after the message was written, before the reply: the server
// may have it, and the error says so.
func TestSubmitCancelAfterData(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	release := srv.Hold()
	defer release()
	sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), "")
	r, raw := built(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sub.Submit(ctx, r, raw) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := srv.WaitHeld(wctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-wctx.Done():
		t.Fatal("Submit did not return after cancel")
	}
	e := asError(t, err)
	if !errors.Is(e, context.Canceled) || e.Permanent || !e.MaybeSent || e.Command != CmdMessage {
		t.Errorf("got %+v (%v)", *e, e)
	}
	if !strings.Contains(e.Error(), "may have been accepted") {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestSubmitTimeoutAfterData(t *testing.T) {
	srv := startServer(t, smtptest.Options{})
	release := srv.Hold()
	defer release()
	sub, err := NewSubmitter(account(srv.Host(), srv.Port(), config.SecurityNone), "", Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, raw := built(t)
	e := asError(t, sub.Submit(context.Background(), r, raw))
	if e.Permanent || !e.MaybeSent || e.Code != 0 {
		t.Errorf("got %+v (%v)", *e, e)
	}
}

func TestSubmitCancelledBefore(t *testing.T) {
	sub := submitter(t, account("192.0.2.1", 25, config.SecurityNone), "")
	r, raw := built(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := asError(t, sub.Submit(ctx, r, raw))
	if !errors.Is(e, context.Canceled) || e.Permanent {
		t.Errorf("got %+v", *e)
	}
}

func TestSubmitRejectsUnusableReminder(t *testing.T) {
	sub := submitter(t, account("192.0.2.1", 25, config.SecurityNone), "")
	r, raw := built(t)
	for _, tc := range []struct {
		name string
		r    *Reminder
		raw  []byte
	}{
		{"nil", nil, raw},
		{"empty raw", r, nil},
		{"no sender", &Reminder{To: r.To, MessageID: "x@y"}, raw},
		{"no recipients", &Reminder{From: r.From, MessageID: "x@y"}, raw},
		{"injected recipient", &Reminder{From: r.From, To: append(r.To[:0:0], r.To[0], r.To[0]), MessageID: "x@y"}, raw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "injected recipient" {
				tc.r.To[1].Addr = "a@b>\r\nRCPT TO:<c@d"
			}
			e := asError(t, sub.Submit(context.Background(), tc.r, tc.raw))
			if !e.Permanent || e.Command != CmdCheck {
				t.Errorf("got %+v", *e)
			}
		})
	}
}

func TestNewSubmitter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		acct     *config.Account
		wantAddr string
		wantErr  string
	}{
		{"tls default port", account("smtp.example", 0, config.SecurityTLS), "smtp.example:465", ""},
		{"starttls default port", account("smtp.example", 0, config.SecurityStartTLS), "smtp.example:587", ""},
		{"none default port", account("127.0.0.1", 0, config.SecurityNone), "127.0.0.1:25", ""},
		{"empty security is tls", account("smtp.example", 0, ""), "smtp.example:465", ""},
		{"explicit port", account("smtp.example", 2525, config.SecurityStartTLS), "smtp.example:2525", ""},
		{"no host", account("", 0, config.SecurityTLS), "", "smtp.host"},
		{"bad security", account("smtp.example", 0, "ssl"), "", "smtp.security"},
		{"bad port", account("smtp.example", 70000, config.SecurityTLS), "", "smtp.port"},
		{"missing ca file", func() *config.Account {
			a := account("smtp.example", 0, config.SecurityTLS)
			a.SMTP.CAFile = filepath.Join(t.TempDir(), "nope.pem")
			return a
		}(), "", "smtp.ca_file"},
		{"ca file without pem", func() *config.Account {
			a := account("smtp.example", 0, config.SecurityTLS)
			a.SMTP.CAFile = filepath.Join(t.TempDir(), "junk.pem")
			os.WriteFile(a.SMTP.CAFile, []byte("junk"), 0o600)
			return a
		}(), "", "no PEM certificate"},
		{"nil account", nil, "", "nil account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSubmitter(tc.acct, "", Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Addr() != tc.wantAddr {
				t.Errorf("Addr = %q, want %q", s.Addr(), tc.wantAddr)
			}
		})
	}
}

// testCA makes a self-signed CA and a server certificate for 127.0.0.1,
// and writes the CA's PEM into a file.
func testCA(t *testing.T) (serverTLS *tls.Config, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "followupd test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, caFile
}

func TestSubmitTLS(t *testing.T) {
	serverTLS, caFile := testCA(t)
	for _, tc := range []struct {
		name     string
		implicit bool
		sec      config.Security
	}{
		{"implicit tls", true, config.SecurityTLS},
		{"starttls", false, config.SecurityStartTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, smtptest.Options{TLSConfig: serverTLS, ImplicitTLS: tc.implicit, Users: map[string]string{"ivan": "pw"}})

			t.Run("with ca_file", func(t *testing.T) {
				acct := account(srv.Host(), srv.Port(), tc.sec)
				acct.SMTP.CAFile = caFile
				r, raw := built(t)
				if err := submitter(t, acct, "pw").Submit(context.Background(), r, raw); err != nil {
					t.Fatal(err)
				}
				if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].User != "ivan" {
					t.Fatalf("messages: %+v", msgs)
				}
			})
			t.Run("without ca_file", func(t *testing.T) {
				r, raw := built(t)
				e := asError(t, submitter(t, account(srv.Host(), srv.Port(), tc.sec), "pw").Submit(context.Background(), r, raw))
				t.Logf("error: %v", e)
				if e.Permanent || e.Command != CmdConnect {
					t.Errorf("got %+v", *e)
				}
				msg := e.Error()
				for _, want := range []string{"smtp 127.0.0.1:", "certificate", "set smtp.ca_file"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q lacks %q", msg, want)
					}
				}
				var ua x509.UnknownAuthorityError
				if !errors.As(e, &ua) {
					t.Errorf("error does not wrap x509.UnknownAuthorityError")
				}
			})
		})
	}
}

// Mismatched security modes fail clearly, never fall back to plain text.
func TestSubmitSecurityMismatch(t *testing.T) {
	plain := startServer(t, smtptest.Options{})
	for _, tc := range []struct {
		name string
		sec  config.Security
		want string
	}{
		{"tls against a plain server", config.SecurityTLS, `security = "starttls"`},
		{"starttls against a server without it", config.SecurityStartTLS, "offers no STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, raw := built(t)
			e := asError(t, submitter(t, account(plain.Host(), plain.Port(), tc.sec), "").Submit(context.Background(), r, raw))
			t.Logf("error: %v", e)
			if e.Permanent || !strings.Contains(e.Error(), tc.want) {
				t.Errorf("got %+v: %v", *e, e)
			}
		})
	}
	if n := len(plain.Messages()); n != 0 {
		t.Errorf("%d messages went out in plain text", n)
	}
}
