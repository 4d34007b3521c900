package imapwatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/message"
)

// fetchSinceBatch is how many UIDs one UID FETCH of FetchSince asks for.
const fetchSinceBatch = 500

// FetchSince hands fn, in batches of ascending UID, the records of every
// message in mailbox whose INTERNALDATE is on or after since's date (UID
// SEARCH SINCE; zero since: all). It never changes the mailbox: the folder
// is opened with EXAMINE, and only the watcher's header fields, flags,
// dates, size and BODYSTRUCTURE are fetched, plus BODY.PEEK[] (capped at
// MaxBodyFetch) for the records needBody (may be nil) asks for, so no
// \Seen is set. Records carry Mailbox, UIDValidity and UID; the caller
// fills in Account and Role. `followupd backtest` uses it. If ctx ends,
// the client is closed.
func FetchSince(ctx context.Context, c *imapclient.Client, mailbox string, since time.Time, needBody func(*message.Record) bool, fn func([]*message.Record) error) error {
	stop := closeOnDone(ctx, c)
	defer stop()
	log := slog.New(slog.DiscardHandler)
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("examine %q: %w", mailbox, err))
	}
	if sel.NumMessages == 0 {
		return nil
	}
	crit := &imap.SearchCriteria{}
	if !since.IsZero() {
		crit.Since = since
	}
	uids, err := uidSearch(c, crit, nil)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("search since %s in %q: %w", since.Format("2006-01-02"), mailbox, err))
	}
	for len(uids) > 0 {
		n := min(len(uids), fetchSinceBatch)
		chunk := uids[:n]
		uids = uids[n:]
		recs, missing, err := fetchHeaders(ctx, c, mailbox, chunk, fetchFull, log)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			// As in the watcher's fetchBatch: ask once more for UIDs whose
			// answer imapclient took as unilateral data; the rest were expunged.
			more, _, err := fetchHeaders(ctx, c, mailbox, missing, fetchFull, log)
			if err != nil {
				return err
			}
			recs = append(recs, more...)
			slices.SortFunc(recs, func(a, b *message.Record) int { return cmpUID(a.UID, b.UID) })
		}
		for _, r := range recs {
			r.Mailbox = mailbox
			r.UIDValidity = sel.UIDValidity
		}
		if needBody != nil {
			if err := fetchBodies(ctx, c, mailbox, recs, needBody, log); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			continue
		}
		if err := fn(recs); err != nil {
			return err
		}
	}
	return nil
}
