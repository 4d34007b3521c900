package mailtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// opTimeout bounds the helpers that take no context.
const opTimeout = 30 * time.Second

// TLSConfig returns a client config trusting the stack's CA (nil without
// TLS).
func (s *Stack) TLSConfig() *tls.Config {
	if s.CAFile == "" {
		return nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// Send delivers raw through the MX port, as an outside sender would: Postfix
// takes it (subject to SetPolicy) and hands it to Dovecot over LMTP.
// Delivery is asynchronous: follow with WaitDelivered. A refusal comes back
// as an error wrapping *smtp.SMTPError (errors.As gives Code and Message).
func (s *Stack) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if err := smtpSend(ctx, s.MXAddr, nil, nil, from, to, raw); err != nil {
		return fmt.Errorf("mailtest: sending via mx %s: %w", s.MXAddr, err)
	}
	return nil
}

// smtpSend runs one SMTP transaction on addr, with STARTTLS when starttls is
// set and AUTH when auth is. ctx bounds the whole transaction.
func smtpSend(ctx context.Context, addr string, starttls *tls.Config, auth sasl.Client, from string, to []string, raw []byte) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dialing: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	if starttls != nil {
		if c, err = smtp.NewClientStartTLS(conn, starttls); err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
		if err := c.Hello("client.mailtest.invalid"); err != nil {
			c.Close()
			return fmt.Errorf("EHLO: %w", err)
		}
	}
	defer func() {
		if cerr := c.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("closing: %w", cerr)
		}
		if ctx.Err() != nil && err != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
	}()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM:<%s>: %w", from, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("writing message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}

// imapLogin connects to the plain IMAP port and logs user in. The client is
// closed when ctx ends.
func (s *Stack) imapLogin(ctx context.Context, user string) (*imapclient.Client, func(), error) {
	pw, ok := s.users[strings.ToLower(user)]
	if !ok {
		return nil, nil, fmt.Errorf("mailtest: unknown user %q", user)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.IMAPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("dialing imap %s: %w", s.IMAPAddr, err)
	}
	c := imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	done := func() {
		stop()
		c.Close()
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		done()
		return nil, nil, fmt.Errorf("imap login %s: %w", user, err)
	}
	return c, done, nil
}

// withIMAP runs f on a logged-in connection bounded by opTimeout.
func (s *Stack) withIMAP(user string, f func(*imapclient.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, done, err := s.imapLogin(ctx, user)
	if err != nil {
		return err
	}
	defer done()
	if err := f(c); err != nil {
		return err
	}
	if err := c.Logout().Wait(); err != nil {
		return fmt.Errorf("imap logout %s: %w", user, err)
	}
	return nil
}

// CreateMailbox creates mailbox for user over IMAP.
func (s *Stack) CreateMailbox(user, mailbox string) error {
	return s.withIMAP(user, func(c *imapclient.Client) error {
		if err := c.Create(mailbox, nil).Wait(); err != nil {
			return fmt.Errorf("mailtest: creating %q for %s: %w", mailbox, user, err)
		}
		return nil
	})
}

// DeleteMailbox deletes mailbox (and its mail) for user over IMAP. Created
// again, it gets a new UIDVALIDITY.
func (s *Stack) DeleteMailbox(user, mailbox string) error {
	return s.withIMAP(user, func(c *imapclient.Client) error {
		if err := c.Delete(mailbox).Wait(); err != nil {
			return fmt.Errorf("mailtest: deleting %q for %s: %w", mailbox, user, err)
		}
		return nil
	})
}

// Append saves raw into user's mailbox with the given flags (e.g. `\Seen`),
// as a mail client saving a sent message to Sent does.
func (s *Stack) Append(user, mailbox string, raw []byte, flags ...string) error {
	// QUIRK: right after a folder is deleted and created again, Dovecot 2.3
	// may refuse an APPEND with "NO Mailbox was deleted under us" while
	// another session (the daemon's watcher) still holds the old index; a
	// client simply tries again.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.appendOnce(user, mailbox, raw, flags); err == nil || !strings.Contains(err.Error(), "deleted under us") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (s *Stack) appendOnce(user, mailbox string, raw []byte, flags []string) error {
	return s.withIMAP(user, func(c *imapclient.Client) error {
		opts := &imap.AppendOptions{Time: time.Now()}
		for _, f := range flags {
			opts.Flags = append(opts.Flags, imap.Flag(f))
		}
		cmd := c.Append(mailbox, int64(len(raw)), opts)
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			return fmt.Errorf("mailtest: appending to %q for %s: %w", mailbox, user, err)
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("mailtest: appending to %q for %s: %w", mailbox, user, err)
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("mailtest: appending to %q for %s: %w", mailbox, user, err)
		}
		return nil
	})
}

// WaitDelivered polls user's mailbox over IMAP until it holds at least n
// messages, then returns all of them (BODY.PEEK[], in UID order, so more
// than n if more arrived). It reconnects across server restarts and treats
// a missing mailbox as empty. The error on ctx's end says how many were
// there.
//
// n == 0 returns at once with what is there (e.g. to assert "still empty").
func (s *Stack) WaitDelivered(ctx context.Context, user, mailbox string, n int) ([][]byte, error) {
	if _, ok := s.users[strings.ToLower(user)]; !ok {
		return nil, fmt.Errorf("mailtest: waiting for mail of unknown user %q", user)
	}
	var (
		c     *imapclient.Client
		done  func()
		have  = -1
		last  error
		delay = 20 * time.Millisecond
	)
	defer func() {
		if done != nil {
			done()
		}
	}()
	for {
		if c == nil {
			c, done, last = s.imapLogin(ctx, user)
		}
		if c != nil {
			msgs, count, err := fetchIfAtLeast(c, mailbox, n)
			if err == nil && msgs != nil {
				return msgs, nil
			}
			have, last = count, err
			var ierr *imap.Error
			if err != nil && !errors.As(err, &ierr) {
				done() // connection trouble: reconnect on the next round
				c, done = nil, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mailtest: waiting for %d messages in %q of %s: have %d (last error: %v): %w",
				n, mailbox, user, have, last, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// fetchIfAtLeast returns mailbox's messages if there are at least n, else
// nil and the count.
func fetchIfAtLeast(c *imapclient.Client, mailbox string, n int) ([][]byte, int, error) {
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return nil, -1, fmt.Errorf("status %q: %w", mailbox, err)
	}
	count := int(*st.NumMessages)
	if count < n {
		return nil, count, nil
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, count, fmt.Errorf("examine %q: %w", mailbox, err)
	}
	out := [][]byte{}
	if count > 0 {
		body := &imap.FetchItemBodySection{Peek: true}
		bufs, err := c.Fetch(allSeq(), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		if err != nil {
			return nil, count, fmt.Errorf("fetch %q: %w", mailbox, err)
		}
		sort.Slice(bufs, func(i, j int) bool { return bufs[i].UID < bufs[j].UID })
		for _, b := range bufs {
			out = append(out, bytes.Clone(b.FindBodySection(body)))
		}
	}
	if err := c.Unselect().Wait(); err != nil {
		return nil, count, fmt.Errorf("unselect %q: %w", mailbox, err)
	}
	if len(out) < n {
		return nil, len(out), nil
	}
	return out, count, nil
}

func allSeq() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}
