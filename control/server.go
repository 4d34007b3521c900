package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Backend is what the daemon offers the control channel. Methods run on
// the server's connection goroutines, concurrently; they return *Error
// (via Errorf) for anything the user got wrong.
type Backend interface {
	Status(ctx context.Context) (*Status, error)
	List(ctx context.Context, q ListQuery) ([]FollowUp, error)
	Show(ctx context.Context, id uint64) (*Thread, error)
	Cancel(ctx context.Context, id uint64) (*FollowUp, error)
	Snooze(ctx context.Context, id uint64, r SnoozeRequest) (*FollowUp, error)
	Resolve(ctx context.Context, id uint64, r ResolveRequest) (*FollowUp, error)
	Approve(ctx context.Context, r ApproveRequest) (*ApproveResult, error)
	// Backup writes a consistent copy of the store to w.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Server serves Backend on a Unix socket.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// Listen creates the socket at path (mode 0600; the directory is created
// 0700 when missing) without serving yet. A stale socket left by a crash
// is replaced; a live one (another followupd answering) or a file that is
// not a socket is an error.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control: %s exists and is not a socket; remove it or set control_socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s: another followupd is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: removing stale socket: %w", err)
		}
	}
	// Bind under a temporary name, restrict, then rename into place: the
	// final path never exists with the umask's permissions.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("control: listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // Close removes path itself
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control: chmod socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control: placing socket at %s: %w", path, err)
	}
	s := &Server{path: path, ln: &peerListener{Listener: ln, log: log}, log: log}
	s.srv = &http.Server{
		Handler:           s.handler(b),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until Close; it returns nil after Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: serving %s: %w", s.path, err)
	}
	return nil
}

// Close stops accepting, waits for running requests until ctx ends, and
// removes the socket.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.srv.Close()
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("control: removing socket: %w", rerr))
	}
	return err
}

func (s *Server) handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Status(r.Context())
		reply(w, s.log, r, st, err)
	})
	mux.HandleFunc("GET "+prefix+"/followups", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		out, err := b.List(r.Context(), ListQuery{Account: q.Get("account"), State: q.Get("state"), Rule: q.Get("rule")})
		if out == nil {
			out = []FollowUp{}
		}
		reply(w, s.log, r, out, err)
	})
	withID := func(fn func(r *http.Request, id uint64) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
			if err != nil || id == 0 {
				reply(w, s.log, r, nil, Errorf(CodeBadRequest, "%q is not a follow-up id (a number, see `followupd list`)", r.PathValue("id")))
				return
			}
			v, err := fn(r, id)
			reply(w, s.log, r, v, err)
		}
	}
	mux.Handle("GET "+prefix+"/followups/{id}", withID(func(r *http.Request, id uint64) (any, error) {
		return b.Show(r.Context(), id)
	}))
	mux.Handle("POST "+prefix+"/followups/{id}/cancel", withID(func(r *http.Request, id uint64) (any, error) {
		return b.Cancel(r.Context(), id)
	}))
	mux.Handle("POST "+prefix+"/followups/{id}/snooze", withID(func(r *http.Request, id uint64) (any, error) {
		var req SnoozeRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.Snooze(r.Context(), id, req)
	}))
	mux.Handle("POST "+prefix+"/followups/{id}/resolve", withID(func(r *http.Request, id uint64) (any, error) {
		var req ResolveRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return b.Resolve(r.Context(), id, req)
	}))
	mux.HandleFunc("POST "+prefix+"/approve", func(w http.ResponseWriter, r *http.Request) {
		var req ApproveRequest
		if err := decode(r, &req); err != nil {
			reply(w, s.log, r, nil, err)
			return
		}
		res, err := b.Approve(r.Context(), req)
		reply(w, s.log, r, res, err)
	})
	mux.HandleFunc("GET "+prefix+"/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(versionHeader, strconv.Itoa(Version))
		w.Header().Set("Content-Type", "application/octet-stream")
		// Errors after the first byte can only cut the stream short; the
		// client compares the byte count in the trailer.
		w.Header().Set("Trailer", "Followupd-Backup-Bytes, Followupd-Backup-Error")
		n, err := b.Backup(r.Context(), w)
		w.Header().Set("Followupd-Backup-Bytes", strconv.FormatInt(n, 10))
		if err != nil {
			s.log.Error("control: backup", "err", err)
			w.Header().Set("Followupd-Backup-Error", err.Error())
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.log, r, nil, Errorf(CodeNotFound, "no such request %s %s (protocol v%d)", r.Method, r.URL.Path, Version))
	})
	return mux
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return Errorf(CodeBadRequest, "decoding request: %v", err)
	}
	return nil
}

var statusOf = map[string]int{
	CodeNotFound:   http.StatusNotFound,
	CodeConflict:   http.StatusConflict,
	CodeBadRequest: http.StatusBadRequest,
	CodeInternal:   http.StatusInternalServerError,
}

// reply writes v as JSON, or err as an Error.
func reply(w http.ResponseWriter, log *slog.Logger, r *http.Request, v any, err error) {
	w.Header().Set(versionHeader, strconv.Itoa(Version))
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := CodeOf(err)
		msg := err.Error()
		if code == CodeInternal {
			log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		w.WriteHeader(statusOf[code])
		_ = json.NewEncoder(w).Encode(&Error{Code: code, Message: msg})
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// peerListener refuses connections from other users (defence in depth
// beside the socket's mode). QUIRK: under systemd's PrivateUsers= the
// service sees root (and every other unmapped user) as the kernel's
// overflow uid, 65534; that uid is let through, and the socket's mode is
// what keeps users other than root out.
const overflowUID = 65534

type peerListener struct {
	net.Listener
	log *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, ok := peerUID(c)
		if !ok || uid == 0 || uid == os.Getuid() || uid == overflowUID {
			return c, nil
		}
		l.log.Warn("control: refused connection from another user", "uid", uid)
		c.Close()
	}
}
