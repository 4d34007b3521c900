package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
)

// NotRunningError: nothing answers on the socket.
type NotRunningError struct {
	Path string
	Err  error
}

func (e *NotRunningError) Error() string {
	what := "no socket at " + e.Path
	if !errors.Is(e.Err, fs.ErrNotExist) {
		what = "nothing listening on " + e.Path
	}
	return fmt.Sprintf("followupd is not running (%s): start it with `systemctl start followupd` or `followupd run -config FILE`", what)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// Client talks to a daemon's control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path; nothing is dialled yet.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Status asks for the daemon's overview.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out Status
	return &out, c.do(ctx, http.MethodGet, "/status", nil, &out)
}

// List returns the follow-ups matching q.
func (c *Client) List(ctx context.Context, q ListQuery) ([]FollowUp, error) {
	v := url.Values{}
	for k, s := range map[string]string{"account": q.Account, "state": q.State, "rule": q.Rule} {
		if s != "" {
			v.Set(k, s)
		}
	}
	path := "/followups"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []FollowUp
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Show returns one follow-up's timeline.
func (c *Client) Show(ctx context.Context, id uint64) (*Thread, error) {
	var out Thread
	return &out, c.do(ctx, http.MethodGet, "/followups/"+strconv.FormatUint(id, 10), nil, &out)
}

// Cancel stops a follow-up.
func (c *Client) Cancel(ctx context.Context, id uint64) (*FollowUp, error) {
	var out FollowUp
	return &out, c.do(ctx, http.MethodPost, "/followups/"+strconv.FormatUint(id, 10)+"/cancel", nil, &out)
}

// Snooze moves a pending step later.
func (c *Client) Snooze(ctx context.Context, id uint64, r SnoozeRequest) (*FollowUp, error) {
	var out FollowUp
	return &out, c.do(ctx, http.MethodPost, "/followups/"+strconv.FormatUint(id, 10)+"/snooze", r, &out)
}

// Resolve records a person's decision on an uncertain step.
func (c *Client) Resolve(ctx context.Context, id uint64, r ResolveRequest) (*FollowUp, error) {
	var out FollowUp
	return &out, c.do(ctx, http.MethodPost, "/followups/"+strconv.FormatUint(id, 10)+"/resolve", r, &out)
}

// Approve approves drafted steps.
func (c *Client) Approve(ctx context.Context, r ApproveRequest) (*ApproveResult, error) {
	var out ApproveResult
	return &out, c.do(ctx, http.MethodPost, "/approve", r, &out)
}

// Backup streams a copy of the store into w and returns its size.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, readError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("control: reading backup: %w", err)
	}
	if msg := resp.Trailer.Get("Followupd-Backup-Error"); msg != "" {
		return n, fmt.Errorf("control: backup failed in the daemon: %s", msg)
	}
	if want := resp.Trailer.Get("Followupd-Backup-Bytes"); want != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("control: backup cut short: got %d bytes, daemon wrote %q", n, want)
	}
	return n, nil
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("control: encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://followupd"+prefix+path, rd)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &NotRunningError{Path: c.path, Err: err}
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("control: %s: permission denied: run as root or as followupd's user", c.path)
		}
		return nil, fmt.Errorf("control: %s: %w", c.path, err)
	}
	if v := resp.Header.Get(versionHeader); v != strconv.Itoa(Version) {
		resp.Body.Close()
		return nil, fmt.Errorf("control: %s speaks control protocol %q, this followupd speaks %d: use the followupd binary of the running daemon", c.path, v, Version)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control: decoding %s reply: %w", path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	var e Error
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Message == "" {
		return &Error{Code: CodeInternal, Message: "control: daemon answered " + resp.Status}
	}
	return &e
}
