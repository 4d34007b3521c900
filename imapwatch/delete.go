package imapwatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ErrDeletedNotRestored is wrapped by DeleteMessageID's error when, on a
// server without UIDPLUS, the \Deleted flag it took off the user's own
// messages (to keep a plain EXPUNGE from removing them) could not be set
// back. The messages are all there, only visible again as not deleted;
// the error names their UIDs.
var ErrDeletedNotRestored = errors.New(`imapwatch: \Deleted not restored on the user's messages`)

// DeleteMessageID removes from mailbox every message whose Message-ID
// header contains msgid (without angle brackets) and returns how many it
// removed. Used when a person approves a drafted reminder (`followupd
// approve`): followupd sends the step itself, so the draft must not stay
// where the sender could send it a second time. Nothing else in mailbox
// is removed, in particular not the messages the user marked \Deleted and
// kept (clients with the "mark as deleted" model, like Thunderbird, leave
// them until the user compacts the folder).
//
// The draft's copies are flagged \Deleted and, with UIDPLUS (RFC 4315
// §2.1), only their UIDs are expunged. Without UIDPLUS there is only the
// plain EXPUNGE, which removes every \Deleted message, so the user's
// \Deleted messages are found first (UID SEARCH DELETED), their flag is
// taken off for the EXPUNGE and put back after it; see expungeOnly. MOVE
// is not used instead: the draft must be gone, not filed elsewhere.
//
// On error nothing was removed (n is 0) and the user's flags were put back
// where possible; the draft's copies may be left flagged \Deleted, which a
// retry handles like unflagged ones. The one exception: n > 0 with an
// error wrapping ErrDeletedNotRestored means the drafts are gone but the
// flags could not be put back (the connection broke right after EXPUNGE).
//
// Without UIDPLUS two races with another client remain, each needing a
// flag change within the three round trips between our SEARCH and the
// restoring STORE: a message the user marks \Deleted in that window is
// expunged with the draft (what a plain EXPUNGE does anyway), and one the
// user un-marks in that window gets \Deleted back. Other clients also see
// the user's \Deleted messages briefly un-marked, and if ctx ends or the
// process dies inside that window (the connection is closed on ctx's end,
// so nothing can be put back) they stay un-marked: no message is lost,
// but the user has to mark them again.
func DeleteMessageID(ctx context.Context, c *imapclient.Client, mailbox, msgid string) (int, error) {
	stop := closeOnDone(ctx, c)
	defer stop()
	ids := cleanIDs([]string{msgid})
	if len(ids) == 0 {
		return 0, errors.New("imapwatch: delete message-id: empty id")
	}
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("select %q: %w", mailbox, err))
	}
	uids, err := uidSearch(c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: ids[0]}}}, nil)
	if err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("search message-id %s in %q: %w", ids[0], mailbox, err))
	}
	if len(uids) == 0 {
		return 0, nil
	}
	set := imap.UIDSet{}
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	if err := storeDeleted(c, set, imap.StoreFlagsAdd); err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("flag %s deleted in %q: %w", ids[0], mailbox, err))
	}
	if c.Caps().Has(imap.CapUIDPlus) {
		if err := c.UIDExpunge(set).Close(); err != nil {
			return 0, ctxErr(ctx, fmt.Errorf("uid expunge %s in %q: %w", ids[0], mailbox, err))
		}
		return len(uids), nil
	}
	expunged, err := expungeOnly(c, mailbox, set)
	if err != nil && expunged {
		// Not through ctxErr, which keeps only ctx's error matchable:
		// callers must be able to tell this case by ErrDeletedNotRestored.
		return len(uids), fmt.Errorf("%s removed from %q, but: %w", ids[0], mailbox, err)
	}
	if err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("expunge %s in %q: %w", ids[0], mailbox, err))
	}
	return len(uids), nil
}

// expungeOnly expunges the messages ours (already flagged \Deleted) from
// the selected mailbox with a plain EXPUNGE, for servers without UIDPLUS,
// and keeps the other \Deleted messages: it takes their flag off first
// and sets it back after. When a step fails it still sets the flag back
// (best effort) and returns both errors joined. expunged reports whether
// the EXPUNGE succeeded, so that an error after it (the flags not put
// back) does not read as "nothing removed".
func expungeOnly(c *imapclient.Client, mailbox string, ours imap.UIDSet) (expunged bool, err error) {
	deleted, err := uidSearch(c, &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil)
	if err != nil {
		return false, fmt.Errorf("search deleted: %w", err)
	}
	others := imap.UIDSet{}
	for _, u := range deleted {
		if !ours.Contains(imap.UID(u)) {
			others.AddNum(imap.UID(u))
		}
	}
	if len(others) == 0 {
		if err := c.Expunge().Close(); err != nil {
			return false, err
		}
		return true, nil
	}
	// restore puts \Deleted back. UID STORE skips UIDs no longer there
	// without an error (RFC 3501 §6.4.8), so it also fits after the
	// EXPUNGE or a failed STORE that changed only some of them.
	restore := func() error {
		if err := storeDeleted(c, others, imap.StoreFlagsAdd); err != nil {
			return fmt.Errorf("%w: uids %v in %q: %w", ErrDeletedNotRestored, others, mailbox, err)
		}
		return nil
	}
	if err := storeDeleted(c, others, imap.StoreFlagsDel); err != nil {
		return false, errors.Join(fmt.Errorf("clear \\Deleted on the user's uids %v: %w", others, err), restore())
	}
	if err := c.Expunge().Close(); err != nil {
		return false, errors.Join(err, restore())
	}
	return true, restore()
}

// storeDeleted adds (op StoreFlagsAdd) or removes (StoreFlagsDel) \Deleted
// on uids with UID STORE ... .SILENT.
func storeDeleted(c *imapclient.Client, uids imap.UIDSet, op imap.StoreFlagsOp) error {
	return c.Store(uids, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
}
