// Package imaptest runs an in-memory IMAP server (go-imap's imapmemserver)
// on a loopback port, for followupd's tests and for the demo.
//
// The server speaks IMAP4rev1 and IMAP4rev2 with IDLE (emulated by polling
// the mailbox every 10 ms, see pollingIdle), without TLS (security = "none"). It does not implement SPECIAL-USE, CONDSTORE or
// QRESYNC, so clients fall back to folder names and full flag fetches.
//
// Besides users and messages, a test can break the connection on purpose:
// DropConnections closes every live client connection and SetRefuse makes
// the server close new ones at once, as a server that is down would.
// StartOptions (NewServerOptions) starts a server that lacks UIDPLUS or
// refuses EXPUNGE, for the code paths real servers force on a client.
package imaptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"followupd/config"
)

// Errors returned by Server methods.
var (
	ErrNoUser    = errors.New("imaptest: no such user")
	ErrNoMailbox = errors.New("imaptest: no such mailbox")
)

// Server is an in-memory IMAP server listening on a TCP address.
// Its methods are safe for concurrent use.
type Server struct {
	mem *imapmemserver.Server
	srv *imapserver.Server
	ln  net.Listener

	mu     sync.Mutex
	users  map[string]*imapmemserver.User
	pass   map[string]string
	conns  map[net.Conn]struct{}
	refuse bool
	closed bool

	serveErr chan error
}

// Options change what a Server offers. The zero value is what Start gives.
type Options struct {
	// NoUIDPlus leaves UIDPLUS (RFC 4315) out of CAPABILITY, as on servers
	// that predate it, so a client has only the plain EXPUNGE, which removes
	// every \Deleted message in the mailbox. Because IMAP4rev2 folds UIDPLUS
	// in, such a server speaks IMAP4rev1 only; it keeps the other extensions
	// IMAP4rev2 would imply (MOVE, ESEARCH, NAMESPACE…). The server still
	// executes a UID EXPUNGE it is sent: only the advertisement changes.
	NoUIDPlus bool
	// FailExpunge makes EXPUNGE and UID EXPUNGE answer NO and remove
	// nothing, as a server does when the mailbox is read-only for the user
	// or its storage fails.
	FailExpunge bool
}

// rev1Extensions are the extensions IMAP4rev2 implies that imapmemserver
// implements, minus UIDPLUS: what a NoUIDPlus server advertises with
// IMAP4rev1 (see availableCaps in go-imap's imapserver/capability.go).
var rev1Extensions = []imap.Cap{
	imap.CapNamespace,
	imap.CapESearch,
	imap.CapSearchRes,
	imap.CapListExtended,
	imap.CapListStatus,
	imap.CapMove,
	imap.CapStatusSize,
	imap.CapBinary,
	imap.CapChildren,
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves IMAP
// until Close.
func Start(addr string) (*Server, error) {
	return StartOptions(addr, Options{})
}

// StartOptions is Start with Options.
func StartOptions(addr string, opt Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imaptest: listen on %s: %w", addr, err)
	}
	s := &Server{
		mem:      imapmemserver.New(),
		users:    make(map[string]*imapmemserver.User),
		pass:     make(map[string]string),
		conns:    make(map[net.Conn]struct{}),
		serveErr: make(chan error, 1),
	}
	s.ln = &trackingListener{Listener: ln, s: s}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	if opt.NoUIDPlus {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
		for _, c := range rev1Extensions {
			caps[c] = struct{}{}
		}
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess, ok := s.mem.NewSession().(imapserver.SessionIMAP4rev2)
			if !ok {
				return nil, nil, errors.New("imaptest: imapmemserver session lacks IMAP4rev2")
			}
			if opt.FailExpunge {
				sess = refusingExpunge{sess}
			}
			return pollingIdle{sess}, nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	go func() { s.serveErr <- s.srv.Serve(s.ln) }()
	return s, nil
}

// NewServer starts a server on a free loopback port and closes it when the
// test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerOptions(t, Options{})
}

// NewServerOptions is NewServer with Options.
func NewServerOptions(t testing.TB, opt Options) *Server {
	t.Helper()
	s, err := StartOptions("127.0.0.1:0", opt)
	if err != nil {
		t.Fatalf("start imap server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the TCP port the server listens on.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Account returns a config.Account for user pointing at this server
// (security "none"); its name and address are user.
func (s *Server) Account(user string) *config.Account {
	host, _, _ := net.SplitHostPort(s.Addr())
	return &config.Account{
		Name:     user,
		Address:  user,
		Username: user,
		IMAP:     config.Server{Host: host, Port: s.Port(), Security: config.SecurityNone},
	}
}

// AddUser creates a user with INBOX and the given mailboxes. Adding an
// existing user adds the mailboxes it lacks.
func (s *Server) AddUser(name, password string, mailboxes ...string) error {
	s.mu.Lock()
	u := s.users[name]
	if u == nil {
		u = imapmemserver.NewUser(name, password)
		s.users[name] = u
		s.pass[name] = password
		s.mem.AddUser(u)
	}
	s.mu.Unlock()
	for _, mb := range append([]string{"INBOX"}, mailboxes...) {
		if err := u.Create(mb, nil); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("imaptest: create mailbox %q for %s: %w", mb, name, err)
		}
	}
	return nil
}

// CreateMailbox creates a mailbox; recreating a deleted one gives it a new
// UIDVALIDITY.
func (s *Server) CreateMailbox(user, mailbox string) error {
	u, err := s.user(user)
	if err != nil {
		return err
	}
	if err := u.Create(mailbox, nil); err != nil {
		return fmt.Errorf("imaptest: create mailbox %q for %s: %w", mailbox, user, err)
	}
	return nil
}

// DeleteMailbox deletes a mailbox and its messages.
func (s *Server) DeleteMailbox(user, mailbox string) error {
	u, err := s.user(user)
	if err != nil {
		return err
	}
	if err := u.Delete(mailbox); err != nil {
		return fmt.Errorf("imaptest: delete mailbox %q for %s: %w", mailbox, user, err)
	}
	return nil
}

// Append stores raw in the user's mailbox with the given flags and the
// current time as INTERNALDATE. Clients IDLE on the mailbox see EXISTS.
func (s *Server) Append(user, mailbox string, raw []byte, flags ...string) error {
	_, err := s.AppendAt(user, mailbox, raw, time.Time{}, flags...)
	return err
}

// AppendAt is Append with an INTERNALDATE (zero: now) that reports the new
// message's UID.
func (s *Server) AppendAt(user, mailbox string, raw []byte, date time.Time, flags ...string) (uint32, error) {
	u, err := s.user(user)
	if err != nil {
		return 0, err
	}
	opt := &imap.AppendOptions{Time: date}
	for _, f := range flags {
		opt.Flags = append(opt.Flags, imap.Flag(f))
	}
	data, err := u.Append(mailbox, literal{bytes.NewReader(raw), int64(len(raw))}, opt)
	if err != nil {
		return 0, fmt.Errorf("imaptest: append to %q for %s: %w", mailbox, user, err)
	}
	return uint32(data.UID), nil
}

// Store adds flags to the message with uid, through a second IMAP
// connection (UID STORE +FLAGS), so that clients watching the mailbox get
// the unilateral FETCH FLAGS a real server sends.
func (s *Server) Store(user, mailbox string, uid uint32, flags ...string) error {
	c, err := s.Dial(user)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return fmt.Errorf("imaptest: select %q: %w", mailbox, err)
	}
	sf := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true}
	for _, f := range flags {
		sf.Flags = append(sf.Flags, imap.Flag(f))
	}
	if err := c.Store(imap.UIDSetNum(imap.UID(uid)), sf, nil).Close(); err != nil {
		return fmt.Errorf("imaptest: store flags on uid %d in %q: %w", uid, mailbox, err)
	}
	return c.Logout().Wait()
}

// Dial opens a logged-in client connection as user. The caller closes it.
func (s *Server) Dial(user string) (*imapclient.Client, error) {
	s.mu.Lock()
	pw, ok := s.pass[user]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, user)
	}
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		return nil, fmt.Errorf("imaptest: dial %s: %w", s.Addr(), err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imaptest: login as %s: %w", user, err)
	}
	return c, nil
}

// DropConnections closes every live client connection, as a server restart
// or a network failure would. It reports how many it closed.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// SetRefuse makes the server close new connections at once (true) or
// serve them again (false). Live connections are not touched.
func (s *Server) SetRefuse(refuse bool) {
	s.mu.Lock()
	s.refuse = refuse
	s.mu.Unlock()
}

// Conns reports how many client connections are open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	s.DropConnections()
	if serr := <-s.serveErr; serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("imaptest: close: %w", err)
	}
	return nil
}

func (s *Server) user(name string) (*imapmemserver.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	return u, nil
}

func isAlreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists
}

// literal is the imap.LiteralReader imapmemserver's Append takes.
type literal struct {
	io.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

// idlePoll is how often an IDLE session looks for mailbox updates.
const idlePoll = 10 * time.Millisecond

// pollingIdle replaces imapmemserver's IDLE, which only wakes up for updates
// queued after IDLE began: an EXISTS queued between the client's last
// command and its IDLE would wait for the next update. Real servers (Dovecot)
// send such pending updates when IDLE starts; polling gives the same result.
type pollingIdle struct {
	imapserver.SessionIMAP4rev2
}

func (p pollingIdle) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		if err := p.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
	}
}

// refusingExpunge answers every EXPUNGE and UID EXPUNGE with NO
// (Options.FailExpunge).
type refusingExpunge struct {
	imapserver.SessionIMAP4rev2
}

func (refusingExpunge) Expunge(*imapserver.ExpungeWriter, *imap.UIDSet) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "imaptest: expunge refused (Options.FailExpunge)"}
}

// trackingListener remembers accepted connections so DropConnections can
// close them, and refuses them while Server.refuse is set.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		refuse := l.s.refuse
		if !refuse {
			l.s.conns[c] = struct{}{}
		}
		l.s.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		return &trackedConn{Conn: c, s: l.s}, nil
	}
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c.Conn)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
