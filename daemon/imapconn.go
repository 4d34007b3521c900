package daemon

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/imapwatch"
)

// dialTimeout bounds connect + login of the daemon's short-lived IMAP
// connections (pre-send search, APPEND, draft checks); they also wait for a
// slot of the shared dial limiter, like the watchers.
const dialTimeout = 20 * time.Second

// withIMAP runs fn on a fresh connection to a's IMAP server, closed after.
// These connections are separate from the watchers' (one connection per
// watched folder, shared with nothing else).
func (d *Daemon) withIMAP(ctx context.Context, a *account, fn func(c *imapclient.Client) error) error {
	c, err := imapwatch.Dial(ctx, a.cfg, a.password, imapwatch.DialOptions{Timeout: dialTimeout, Limiter: d.dial})
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// folders returns a's Sent and Drafts names: configured, else discovered
// on c (once; the result is remembered). A folder that cannot be found is "".
func (d *Daemon) folders(ctx context.Context, c *imapclient.Client, a *account) (sent, drafts string, err error) {
	a.mu.Lock()
	sent, drafts = a.sent, a.drafts
	a.mu.Unlock()
	if sent != "" && drafts != "" {
		return sent, drafts, nil
	}
	fs, err := imapwatch.Discover(ctx, c, a.cfg)
	if err != nil {
		return "", "", err
	}
	a.mu.Lock()
	a.sent, a.drafts = cmp.Or(a.sent, fs.Sent), cmp.Or(a.drafts, fs.Drafts)
	sent, drafts = a.sent, a.drafts
	a.mu.Unlock()
	return sent, drafts, nil
}

// errNoFolder says an account has no folder of a role.
func errNoFolder(a *account, role string) error {
	return fmt.Errorf("account %s: no %s folder found", a.cfg.Name, role)
}
