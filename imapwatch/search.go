package imapwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// searchChunk is how many Message-IDs go into one UID SEARCH: each adds two
// HEADER keys to a nested OR, and servers limit command length.
const searchChunk = 16

// SearchReplies returns the UIDs of messages in mailbox whose In-Reply-To or
// References header contains any of msgids (given without angle brackets).
// The mailbox is opened read-only (EXAMINE), so no flag changes. Used right
// before a reminder is sent: a reply on the server blocks it (DESIGN
// invariant 2). If ctx ends, the client is closed.
func SearchReplies(ctx context.Context, c *imapclient.Client, mailbox string, msgids []string) ([]uint32, error) {
	stop := closeOnDone(ctx, c)
	defer stop()
	if err := examine(ctx, c, mailbox); err != nil {
		return nil, err
	}
	ids := cleanIDs(msgids)
	var out []uint32
	for len(ids) > 0 {
		n := min(len(ids), searchChunk)
		chunk := ids[:n]
		ids = ids[n:]
		var leaves []imap.SearchCriteria
		for _, id := range chunk {
			leaves = append(leaves,
				imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "In-Reply-To", Value: id}}},
				imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "References", Value: id}}})
		}
		uids, err := uidSearch(c, orAll(leaves), nil)
		if err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("search replies to %s in %q: %w", strings.Join(chunk, ", "), mailbox, err))
		}
		out = append(out, uids...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// FindMessageID reports whether mailbox (opened read-only) holds a message
// whose Message-ID header contains msgid (without angle brackets). Used to
// prove a reminder whose outcome was lost did reach Sent.
func FindMessageID(ctx context.Context, c *imapclient.Client, mailbox, msgid string) (bool, error) {
	stop := closeOnDone(ctx, c)
	defer stop()
	ids := cleanIDs([]string{msgid})
	if len(ids) == 0 {
		return false, errors.New("imapwatch: find message-id: empty id")
	}
	if err := examine(ctx, c, mailbox); err != nil {
		return false, err
	}
	uids, err := uidSearch(c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: ids[0]}}}, nil)
	if err != nil {
		return false, ctxErr(ctx, fmt.Errorf("search message-id %s in %q: %w", ids[0], mailbox, err))
	}
	return len(uids) > 0, nil
}

// Append stores raw in mailbox with flags and date as INTERNALDATE (zero:
// the server's now). Used for reminders in Sent and drafts in approval mode.
func Append(ctx context.Context, c *imapclient.Client, mailbox string, raw []byte, flags []string, date time.Time) error {
	stop := closeOnDone(ctx, c)
	defer stop()
	opt := &imap.AppendOptions{Time: date}
	for _, f := range flags {
		opt.Flags = append(opt.Flags, imap.Flag(f))
	}
	cmd := c.Append(mailbox, int64(len(raw)), opt)
	_, werr := bytes.NewReader(raw).WriteTo(cmd)
	cerr := cmd.Close()
	_, err := cmd.Wait()
	if err == nil {
		err = errors.Join(werr, cerr)
	}
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("append %d bytes to %q: %w", len(raw), mailbox, err))
	}
	return nil
}

func examine(ctx context.Context, c *imapclient.Client, mailbox string) error {
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return ctxErr(ctx, fmt.Errorf("examine %q: %w", mailbox, err))
	}
	return nil
}

// uidSearch runs UID SEARCH and returns the UIDs, ascending.
func uidSearch(c *imapclient.Client, crit *imap.SearchCriteria, opts *imap.SearchOptions) ([]uint32, error) {
	data, err := c.UIDSearch(crit, opts).Wait()
	if err != nil {
		return nil, err
	}
	set, ok := data.All.(imap.UIDSet)
	if !ok {
		return nil, nil
	}
	nums, ok := set.Nums()
	if !ok {
		return nil, fmt.Errorf("server answered SEARCH with a dynamic set %v", set)
	}
	out := make([]uint32, len(nums))
	for i, n := range nums {
		out[i] = uint32(n)
	}
	slices.Sort(out)
	return out, nil
}

// orAll joins criteria with OR as a balanced tree (depth log2 n).
func orAll(cs []imap.SearchCriteria) *imap.SearchCriteria {
	switch len(cs) {
	case 0:
		return &imap.SearchCriteria{}
	case 1:
		return &cs[0]
	}
	mid := len(cs) / 2
	return &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{*orAll(cs[:mid]), *orAll(cs[mid:])}}}
}

// cleanIDs strips <> and spaces and drops empty and duplicate ids. An id
// with a line break or NUL cannot be a Message-ID and is dropped
// rather than sent to the server.
func cleanIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		id = strings.TrimPrefix(id, "<")
		id = strings.TrimSuffix(id, ">")
		if id == "" || strings.ContainsAny(id, "\r\n\x00") || slices.Contains(out, id) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// closeOnDone closes c when ctx ends; the returned func stops that.
func closeOnDone(ctx context.Context, c *imapclient.Client) func() bool {
	return context.AfterFunc(ctx, func() { _ = c.Close() })
}

// ctxErr prefers ctx's error when a command failed because ctx ended (and
// closed the connection).
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
