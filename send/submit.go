package send

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"followupd/config"
	"followupd/message"
)

// DefaultTimeout bounds each SMTP step (dial, every command, the content).
const DefaultTimeout = 60 * time.Second

// Options tune a Submitter.
type Options struct {
	Logger   *slog.Logger  // default: discard
	Timeout  time.Duration // default DefaultTimeout
	HeloName string        // EHLO name; default: the host name
}

// Submitter submits reminders for one account. It opens one connection per
// Submit, so it holds no connection state and is safe for concurrent use.
type Submitter struct {
	acct     string // account name, for logs
	host     string
	port     int
	security config.Security
	username string
	password string
	tls      *tls.Config // ServerName and roots; cloned per connection
	opt      Options
	log      *slog.Logger
}

// NewSubmitter checks acct.SMTP and loads its CA file. It does not dial.
func NewSubmitter(acct *config.Account, password string, opt Options) (*Submitter, error) {
	if acct == nil {
		return nil, errors.New("send: nil account")
	}
	srv := acct.SMTP
	if srv.Host == "" {
		return nil, fmt.Errorf("send: account %q: smtp.host is empty", acct.Name)
	}
	sec := srv.Security
	if sec == "" {
		sec = config.SecurityTLS
	}
	port := srv.Port
	switch sec {
	case config.SecurityTLS:
		if port == 0 {
			port = 465
		}
	case config.SecurityStartTLS:
		if port == 0 {
			port = 587
		}
	case config.SecurityNone:
		if port == 0 {
			port = 25
		}
	default:
		return nil, fmt.Errorf("send: account %q: smtp.security %q: want tls, starttls or none", acct.Name, sec)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("send: account %q: smtp.port %d out of range", acct.Name, port)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	username := acct.Username
	if username == "" {
		username = acct.Address
	}
	s := &Submitter{
		acct:     acct.Name,
		host:     srv.Host,
		port:     port,
		security: sec,
		username: username,
		password: password,
		opt:      opt,
		log:      opt.Logger.With("pkg", "send", "account", acct.Name),
	}
	if sec != config.SecurityNone {
		cfg := &tls.Config{ServerName: srv.Host, MinVersion: tls.VersionTLS12}
		if srv.CAFile != "" {
			pool, err := loadRoots(srv.CAFile)
			if err != nil {
				return nil, fmt.Errorf("send: account %q: smtp.ca_file: %w", acct.Name, err)
			}
			cfg.RootCAs = pool
		}
		s.tls = cfg
	}
	return s, nil
}

// loadRoots returns the system roots plus the certificates in the PEM file.
func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}

// Addr is host:port of the SMTP server.
func (s *Submitter) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Submit sends raw (from Build) to r's To and Cc with envelope sender
// r.From.Addr, exactly as given. It returns nil when the server accepted the
// message, else an *Error. Cancelling ctx aborts the submission at once (the
// connection is closed).
func (s *Submitter) Submit(ctx context.Context, r *Reminder, raw []byte) error {
	return s.SubmitWith(ctx, r, raw, nil)
}

// SubmitWith is Submit with a hook called after the message has been
// written and right before the final "." of DATA — the one moment after
// which the server may have taken the message. The daemon commits its
// "submitting" ledger mark there, so a crash before it is provably unsent.
// An error from beforeCommit aborts without the final dot (nothing is
// delivered) and is returned as a non-permanent *Error.
func (s *Submitter) SubmitWith(ctx context.Context, r *Reminder, raw []byte, beforeCommit func() error) error {
	addr := s.Addr()
	msgID := ""
	if r != nil {
		msgID = r.MessageID
	}
	fail := func(cmd string, err error) *Error { return newError(ctx, addr, cmd, msgID, err) }
	check := func(err error) *Error {
		// Nothing a retry could fix: the reminder itself is unusable.
		return &Error{Permanent: true, Command: CmdCheck, MessageID: msgID, Err: err}
	}
	if r == nil {
		return check(errors.New("send: nil reminder"))
	}
	if len(raw) == 0 {
		return check(errors.New("send: empty message"))
	}
	from := strings.TrimSpace(r.From.Addr)
	if from == "" || strings.ContainsAny(from, "\r\n<> ") {
		return check(fmt.Errorf("send: envelope sender %q: %w", from, ErrNoSender))
	}
	rcpts, err := envelopeRcpts(r)
	if err != nil {
		return check(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(CmdConnect, err)
	}
	log := s.log.With("msgid", msgID, "step", r.Step)

	// rawConn is the TCP connection under any TLS, so cancellation can
	// close it even while go-mail holds its client lock waiting on a read.
	var (
		mu      sync.Mutex
		rawConn net.Conn
		closed  bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		if rawConn != nil {
			_ = rawConn.Close()
		}
	})
	defer stop()
	dial := func(dctx context.Context, network, address string) (net.Conn, error) {
		d := net.Dialer{Timeout: s.opt.Timeout}
		c, err := d.DialContext(dctx, network, address)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		rawConn = c
		gone := closed
		mu.Unlock()
		if gone {
			_ = c.Close()
			return nil, ctx.Err()
		}
		if s.security != config.SecurityTLS {
			return c, nil
		}
		tc := tls.Client(c, s.tls.Clone())
		hctx, cancel := context.WithTimeout(dctx, s.opt.Timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return tc, nil
	}

	client, err := mail.NewClient(s.host, s.clientOptions(dial)...)
	if err != nil {
		return fail(CmdConnect, err)
	}
	log.Debug("submitting reminder", "server", addr, "rcpts", len(rcpts))
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		cmd := CmdConnect
		if strings.Contains(err.Error(), "SMTP AUTH") {
			cmd = CmdAuth
		}
		return fail(cmd, err)
	}
	quit := false // a clean QUIT only after a finished transaction
	defer func() {
		if quit {
			if err := sc.Quit(); err != nil {
				log.Debug("closing smtp connection", "err", err)
			}
		}
		_ = sc.Close()
	}()

	if err := s.deadline(sc); err != nil {
		return fail(CmdMail, err)
	}
	if err := sc.Mail(from); err != nil {
		return fail(CmdMail, err)
	}
	var refused []string
	var rcptErr *Error
	for _, rc := range rcpts {
		if err := sc.Rcpt(rc); err != nil {
			e := fail(CmdRcpt, err)
			if e.Code == 0 { // connection trouble, not a refusal
				return e
			}
			refused = append(refused, rc)
			// Keep the worst: a permanent refusal outranks a temporary one.
			if rcptErr == nil || (e.Permanent && !rcptErr.Permanent) {
				rcptErr = e
			}
		}
	}
	if rcptErr != nil {
		// All or nothing: a reminder that reaches only part of the thread
		// is not the step the ledger recorded.
		rcptErr.Rcpts = refused
		if err := sc.Reset(); err == nil {
			quit = true
		}
		return rcptErr
	}
	if err := s.deadline(sc); err != nil {
		return fail(CmdData, err)
	}
	w, err := sc.Data()
	if err != nil {
		return fail(CmdData, err)
	}
	if _, err := w.Write(raw); err != nil {
		return fail(CmdMessage, err)
	}
	if beforeCommit != nil {
		if err := beforeCommit(); err != nil {
			// Closing the connection without the final dot makes the
			// server discard the message (RFC 5321 §4.1.1.4).
			quit = false
			return fail(CmdMessage, fmt.Errorf("aborted before the end of DATA: %w", err))
		}
	}
	if err := w.Close(); err != nil {
		e := fail(CmdMessage, err)
		// No reply read: the server may have taken the message.
		e.MaybeSent = e.Code == 0
		return e
	}
	quit = true
	resp := ""
	if dc, ok := w.(*smtp.DataCloser); ok {
		resp = dc.ServerResponse()
	}
	log.Debug("reminder submitted", "server", addr, "response", resp)
	return nil
}

// deadline renews the connection deadline before the next step.
func (s *Submitter) deadline(sc *smtp.Client) error {
	return sc.UpdateDeadline(s.opt.Timeout)
}

func (s *Submitter) clientOptions(dial mail.DialContextFunc) []mail.Option {
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.opt.Timeout),
		mail.WithDialContextFunc(dial),
	}
	if s.opt.HeloName != "" {
		opts = append(opts, mail.WithHELO(s.opt.HeloName))
	}
	switch s.security {
	case config.SecurityTLS:
		// The dial function speaks TLS itself; WithSSL only stops go-mail
		// from trying STARTTLS on top.
		opts = append(opts, mail.WithSSL(), mail.WithTLSConfig(s.tls))
	case config.SecurityStartTLS:
		// Required, not opportunistic: a server that stops offering
		// STARTTLS (or a stripping middlebox) fails the connection.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(s.tls))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.password != "" {
		opts = append(opts, mail.WithUsername(s.username), mail.WithPassword(s.password))
		if s.security == config.SecurityNone {
			// Plain connections are only configured for loopback or with
			// allow_insecure set (package config enforces it), so sending
			// the password unencrypted was chosen by the operator.
			opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlainNoEnc, mail.SMTPAuthLoginNoEnc))
		} else {
			opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin))
		}
	}
	return opts
}

// envelopeRcpts returns To then Cc without duplicates (compared
// case-insensitively).
func envelopeRcpts(r *Reminder) ([]string, error) {
	seen := make(map[string]bool)
	var out []string
	for _, a := range append(append([]message.Address(nil), r.To...), r.Cc...) {
		addr := strings.TrimSpace(a.Addr)
		if addr == "" || strings.ContainsAny(addr, "\r\n<> ") || !strings.Contains(addr, "@") {
			return nil, fmt.Errorf("send: recipient %q is not an address", a.Addr)
		}
		if key := strings.ToLower(addr); !seen[key] {
			seen[key] = true
			out = append(out, addr)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoRecipient
	}
	return out, nil
}
