package smtptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"followupd/clock"
)

// Message is one accepted submission.
type Message struct {
	From string   // MAIL FROM
	To   []string // RCPT TO, in order
	Data []byte   // as received, CRLF line endings, dot-unstuffed
	At   time.Time
	User string // the AUTH PLAIN user, "" when not authenticated
}

// Options configure a Server. The zero value is a plain server that needs
// no AUTH and only records.
type Options struct {
	// Users maps AUTH PLAIN user names to passwords. nil: no AUTH offered
	// and none required; non-nil: MAIL FROM is refused with 530 until the
	// client authenticates.
	Users map[string]string
	// OnMessage is called with each accepted message, after it is recorded
	// and before the client gets its 250 (e.g. to deliver it into an
	// in-memory IMAP inbox). It must not call back into the Server's
	// failure controls while a test waits on the same connection.
	OnMessage func(Message)

	// TLSConfig, when set, enables TLS: STARTTLS is offered on a plain
	// listener, or the listener speaks TLS from the first byte when
	// ImplicitTLS is true.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Clock stamps Message.At; default clock.Real.
	Clock clock.Clock
	// Logger receives go-smtp's server errors; default discards them.
	Logger *slog.Logger
}

// Server is a running in-process SMTP server. All methods are safe for
// concurrent use.
type Server struct {
	srv  *smtp.Server
	ln   net.Listener
	opt  Options
	done chan struct{} // closed when Serve returns

	mu       sync.Mutex
	msgs     []Message
	changed  chan struct{} // closed and replaced on every new message
	failRcpt map[string]*smtp.SMTPError
	failN    int
	failErr  *smtp.SMTPError
	dropN    int           // DATA commands still to accept and then drop (DropNext)
	hold     chan struct{} // non-nil: DATA replies wait until it is closed
	held     chan struct{} // closed when a DATA starts waiting on hold
	heldOnce *sync.Once
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves until
// Close.
func Start(addr string, opt Options) (*Server, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.ImplicitTLS && opt.TLSConfig == nil {
		return nil, errors.New("smtptest: ImplicitTLS needs TLSConfig")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtptest: listen on %s: %w", addr, err)
	}
	if opt.ImplicitTLS {
		ln = tls.NewListener(ln, opt.TLSConfig)
	}
	s := &Server{
		ln:       ln,
		opt:      opt,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		failRcpt: make(map[string]*smtp.SMTPError),
	}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "smtptest.localhost"
	srv.AllowInsecureAuth = true // loopback tests authenticate over plain TCP
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ErrorLog = logAdapter{opt.Logger}
	if !opt.ImplicitTLS {
		srv.TLSConfig = opt.TLSConfig
	}
	s.srv = srv
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln) // returns when Close closes the listener
	}()
	return s, nil
}

// Addr returns host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host and Port split Addr, for building a config.Server.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port is the listening port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Messages returns a copy of the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

func (s *Server) copyLocked() []Message {
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		out[i] = m
	}
	return out
}

// Wait blocks until at least n messages were accepted, and returns them all;
// it returns ctx's error (with what arrived so far) when ctx ends first.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := s.copyLocked()
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("smtptest: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// FailRecipient makes RCPT TO:<addr> fail with code, the enhanced status
// ("5.1.1", may be empty) and text, until called again with code 0.
func (s *Server) FailRecipient(addr string, code int, enhanced string, text string) {
	key := strings.ToLower(strings.TrimSpace(addr))
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.failRcpt, key)
		return
	}
	s.failRcpt[key] = &smtp.SMTPError{Code: code, EnhancedCode: parseEnhanced(enhanced, code), Message: text}
}

// FailNext makes the next n DATA commands fail with code and text (after the
// message was read, as a real server's content filter would).
func (s *Server) FailNext(n int, code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN = n
	s.failErr = &smtp.SMTPError{Code: code, EnhancedCode: parseEnhanced("", code), Message: text}
}

// DropNext makes the next n DATA commands accept the message (it is
// recorded and OnMessage runs, as for any accepted message) and then close
// the connection without a reply: the server took the whole message but
// the client never learns it, as when a slow content filter outlasts the
// client's timeout. A DATA that FailNext fails is not dropped.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}

// Hold makes DATA replies wait (after the message was read) until the
// returned release is called; release is idempotent. A held message is
// recorded when released, as if the server had been slow to answer.
func (s *Server) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.held = make(chan struct{})
	s.heldOnce = new(sync.Once)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// WaitHeld blocks until a DATA is waiting on the current Hold, so a test
// knows the client has written its whole message and awaits the reply.
func (s *Server) WaitHeld(ctx context.Context) error {
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held == nil {
		return errors.New("smtptest: WaitHeld without Hold")
	}
	select {
	case <-held:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("smtptest: waiting for a held DATA: %w", ctx.Err())
	}
}

// Close stops the listener and drops every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	// Serve may not have registered the listener with go-smtp yet; closing
	// it here makes that Serve return at once instead of accepting forever.
	_ = s.ln.Close()
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtptest: close: %w", err)
	}
	return nil
}

// parseEnhanced turns "5.1.1" into go-smtp's EnhancedCode; empty or bad
// input yields EnhancedCodeNotSet, which go-smtp writes as X.0.0.
func parseEnhanced(s string, code int) smtp.EnhancedCode {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return smtp.EnhancedCodeNotSet
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return smtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	if ec[0] != code/100 {
		return smtp.EnhancedCodeNotSet
	}
	return ec
}

// errAuthRequired is RFC 4954 §6's reply to MAIL before AUTH (go-smtp's own
// ErrAuthRequired uses 502).
var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *Server
	conn *smtp.Conn // to drop the connection (DropNext)
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string {
	if se.s.opt.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if se.s.opt.Users == nil || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnsupported
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		want, ok := se.s.opt.Users[username]
		if !ok || want != password {
			return smtp.ErrAuthFailed
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opt.Users != nil && se.user == "" {
		return errAuthRequired
	}
	se.from = from
	se.to = nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.s.mu.Lock()
	fail := se.s.failRcpt[strings.ToLower(to)]
	se.s.mu.Unlock()
	if fail != nil {
		return fail
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.mu.Lock()
	hold, held, once := se.s.hold, se.s.held, se.s.heldOnce
	se.s.mu.Unlock()
	if hold != nil {
		once.Do(func() { close(held) })
		<-hold
	}

	se.s.mu.Lock()
	if se.s.failN > 0 {
		se.s.failN--
		fail := se.s.failErr
		se.s.mu.Unlock()
		return fail
	}
	m := Message{
		From: se.from,
		To:   append([]string(nil), se.to...),
		Data: data,
		At:   se.s.opt.Clock.Now(),
		User: se.user,
	}
	se.s.msgs = append(se.s.msgs, m)
	close(se.s.changed)
	se.s.changed = make(chan struct{})
	on := se.s.opt.OnMessage
	drop := se.s.dropN > 0
	if drop {
		se.s.dropN--
	}
	se.s.mu.Unlock()

	if on != nil {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		on(m)
	}
	if drop {
		// The raw connection, not smtp.Conn.Close: that one ends the
		// session go-smtp is still using for this DATA's reply. The reply
		// then fails to be written and the serving loop ends.
		_ = se.conn.Conn().Close()
	}
	return nil
}

func (se *session) Reset() {
	se.from = ""
	se.to = nil
}

func (se *session) Logout() error { return nil }

// logAdapter sends go-smtp's server log lines to slog at debug level, or
// nowhere.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...interface{}) {
	if a.l != nil {
		a.l.Debug("smtptest: " + fmt.Sprintf(format, v...))
	}
}

func (a logAdapter) Println(v ...interface{}) {
	if a.l != nil {
		a.l.Debug("smtptest: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
	}
}
