package imapwatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DeleteMessageID removes from mailbox every message whose Message-ID
// header contains msgid (without angle brackets) and returns how many it
// removed. Used when a person approves a drafted reminder (`followupd
// approve`): followupd sends the step itself, so the draft must not stay
// where the sender could send it a second time. With UIDPLUS only those
// UIDs are expunged; without it EXPUNGE also removes messages the user
// had already marked \Deleted in that folder.
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
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("flag %s deleted in %q: %w", ids[0], mailbox, err))
	}
	if c.Caps().Has(imap.CapUIDPlus) {
		err = c.UIDExpunge(set).Close()
	} else {
		err = c.Expunge().Close()
	}
	if err != nil {
		return 0, ctxErr(ctx, fmt.Errorf("expunge %s in %q: %w", ids[0], mailbox, err))
	}
	return len(uids), nil
}
