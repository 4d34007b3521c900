package imapwatch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"

	"followupd/config"
)

// DefaultDialTimeout bounds connect, TLS handshake, greeting and login.
const DefaultDialTimeout = 30 * time.Second

// DialOptions tunes Dial.
type DialOptions struct {
	// DebugWriter receives the raw IMAP trace when set. LOGIN is replaced by
	// a placeholder line, so the password never reaches it.
	DebugWriter io.Writer
	// Timeout bounds connect + TLS + greeting + login; default
	// DefaultDialTimeout. Waiting for Limiter is not part of it.
	Timeout time.Duration
	// Limiter, when set, bounds how many dials run at once (shared by the
	// whole process); Dial waits for a slot, or for ctx.
	Limiter *DialLimiter

	// handler receives unilateral data; set by the Watcher for its own
	// connections.
	handler *imapclient.UnilateralDataHandler
}

// Dial connects to the account's IMAP server and logs in.
//
// acct.IMAP.Security picks implicit TLS ("tls", the default, port 993),
// STARTTLS ("starttls", port 143) or plain text ("none", port 143);
// acct.IMAP.CAFile adds a PEM CA bundle to the system roots. A TLS failure
// is reported with host:port and a hint ("certificate signed by unknown
// authority: set imap.ca_file"). If ctx ends before Dial returns, the
// connection is closed and ctx's error returned; afterwards the caller owns
// the client and closes it.
func Dial(ctx context.Context, acct *config.Account, password string, opt DialOptions) (*imapclient.Client, error) {
	if acct == nil {
		return nil, errors.New("imapwatch: dial: no account")
	}
	addr := serverAddr(acct.IMAP)
	release, err := opt.Limiter.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("imap %s: waiting for a dial slot: %w", addr, err)
	}
	defer release()
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	security := acct.IMAP.Security
	if security == "" {
		security = config.SecurityTLS
	}
	var tlsCfg *tls.Config
	if security != config.SecurityNone {
		if tlsCfg, err = tlsConfig(acct.IMAP); err != nil {
			return nil, err
		}
	}

	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imap %s: connect: %w", addr, err)
	}
	// Until Dial returns, a cancelled ctx or the timeout closes the socket,
	// which unblocks whatever imapclient is waiting for.
	stop := context.AfterFunc(dctx, func() { raw.Close() })

	trace := &traceWriter{w: opt.DebugWriter}
	copts := &imapclient.Options{
		UnilateralDataHandler: opt.handler,
		// Attachment names and other RFC 2047 words in any charset.
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
	}
	if opt.DebugWriter != nil {
		copts.DebugWriter = trace
	}

	var c *imapclient.Client
	switch security {
	case config.SecurityTLS:
		conn := tls.Client(raw, tlsCfg)
		if err := conn.HandshakeContext(dctx); err != nil {
			stop()
			raw.Close()
			return nil, dialErr(ctx, tlsError(addr, err))
		}
		c = imapclient.New(conn, copts)
	case config.SecurityStartTLS:
		copts.TLSConfig = tlsCfg
		c, err = imapclient.NewStartTLS(raw, copts)
		if err != nil {
			stop()
			raw.Close()
			return nil, dialErr(ctx, tlsError(addr, fmt.Errorf("starttls: %w", err)))
		}
	case config.SecurityNone:
		c = imapclient.New(raw, copts)
	default:
		stop()
		raw.Close()
		return nil, fmt.Errorf("imap %s: unknown security %q (want tls, starttls or none)", addr, security)
	}

	fail := func(err error) (*imapclient.Client, error) {
		stop()
		c.Close()
		return nil, dialErr(ctx, err)
	}
	if err := c.WaitGreeting(); err != nil {
		return fail(fmt.Errorf("imap %s: greeting: %w", addr, err))
	}
	if c.State() != imap.ConnStateAuthenticated { // not PREAUTH
		user := acct.Username
		if user == "" {
			user = acct.Address
		}
		trace.mute(true)
		err := c.Login(user, password).Wait()
		trace.mute(false)
		if err != nil {
			return fail(fmt.Errorf("imap %s: login as %q: %w", addr, user, err))
		}
	}
	if !stop() {
		// ctx ended (or the timeout hit) after login; the socket is closed.
		c.Close()
		return nil, dialErr(ctx, fmt.Errorf("imap %s: %w", addr, dctx.Err()))
	}
	return c, nil
}

// dialErr prefers the caller's cancellation over the symptom it caused.
func dialErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func serverAddr(s config.Server) string {
	port := s.Port
	if port == 0 {
		port = 143
		if s.Security == "" || s.Security == config.SecurityTLS {
			port = 993
		}
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(port))
}

func tlsConfig(s config.Server) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12, NextProtos: []string{"imap"}}
	if s.CAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("imap.ca_file %q: %w", s.CAFile, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("imap.ca_file %q: no PEM certificate found", s.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// tlsError names host:port and says what to change for the usual causes.
func tlsError(addr string, err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("imap %s: TLS: certificate signed by unknown authority: set imap.ca_file: %w", addr, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("imap %s: TLS: certificate is not valid for this host name: check imap.host: %w", addr, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("imap %s: TLS: certificate is invalid (expired or not yet valid?): %w", addr, err)
	case errors.As(err, &record):
		return fmt.Errorf("imap %s: TLS: the server did not answer with TLS: check imap.security and imap.port: %w", addr, err)
	}
	return fmt.Errorf("imap %s: TLS: %w", addr, err)
}

// traceWriter forwards the IMAP trace, except while muted (during LOGIN).
// It never fails: a broken trace must not break the connection.
type traceWriter struct {
	w io.Writer

	mu    sync.Mutex
	muted bool
}

func (t *traceWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.muted && t.w != nil {
		_, _ = t.w.Write(p)
	}
	return len(p), nil
}

func (t *traceWriter) mute(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on && !t.muted && t.w != nil {
		_, _ = io.WriteString(t.w, "[imapwatch: LOGIN and its reply not traced]\r\n")
	}
	t.muted = on
}
