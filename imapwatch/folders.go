package imapwatch

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/config"
)

// Folders are the resolved mailbox names of an account. An empty name
// means the folder was neither configured nor found.
type Folders struct {
	Inbox, Sent, Drafts string
}

// Common names of the Sent and Drafts folders, tried in order when the
// server does not mark them with SPECIAL-USE (RFC 6154) attributes. Matching
// is case-insensitive, on the whole name or on its last hierarchy level
// ("INBOX.Sent", "INBOX/Sent").
var (
	sentNames = []string{
		"Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail",
		"[Google Mail]/Sent Mail", "INBOX.Sent", "INBOX/Sent", "Sent-Mail",
		"Отправленные", "Отправленные элементы", "Gesendet", "Gesendete Elemente",
		"Gesendete Objekte", "Envoyés", "Éléments envoyés", "Enviados",
		"Elementos enviados", "Posta inviata", "Inviati", "Verzonden", "Wysłane",
	}
	draftNames = []string{
		"Drafts", "Draft", "[Gmail]/Drafts", "[Google Mail]/Drafts", "INBOX.Drafts",
		"INBOX/Drafts", "Черновики", "Entwürfe", "Brouillons", "Borradores",
		"Bozze", "Concepten", "Kopie robocze",
	}
)

// Discover resolves the account's Inbox, Sent and Drafts folders. Names set
// in acct.Folders win; otherwise a LIST (with RETURN (SPECIAL-USE) when the
// server has SPECIAL-USE) is searched for \Sent and \Drafts, and then for
// the common names above. A folder not found is left empty; Discover fails
// only when LIST does. If ctx ends, the client is closed.
func Discover(ctx context.Context, c *imapclient.Client, acct *config.Account) (Folders, error) {
	f := Folders{Inbox: acct.Folders.Inbox, Sent: acct.Folders.Sent, Drafts: acct.Folders.Drafts}
	if f.Inbox == "" {
		f.Inbox = "INBOX"
	}
	if f.Sent != "" && f.Drafts != "" {
		return f, nil
	}
	stop := closeOnDone(ctx, c)
	defer stop()

	var opts *imap.ListOptions
	caps := c.Caps()
	if caps.Has(imap.CapSpecialUse) && (caps.Has(imap.CapListExtended) || caps.Has(imap.CapIMAP4rev2)) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		return f, ctxErr(ctx, fmt.Errorf("list mailboxes: %w", err))
	}
	if f.Sent == "" {
		f.Sent = pickFolder(list, imap.MailboxAttrSent, sentNames)
	}
	if f.Drafts == "" {
		f.Drafts = pickFolder(list, imap.MailboxAttrDrafts, draftNames)
	}
	return f, nil
}

// pickFolder returns the selectable mailbox with attr, else the first of
// names that exists (whole name first, then last hierarchy level).
func pickFolder(list []*imap.ListData, attr imap.MailboxAttr, names []string) string {
	selectable := func(l *imap.ListData) bool {
		for _, a := range l.Attrs {
			if strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) ||
				strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)) {
				return false
			}
		}
		return true
	}
	for _, l := range list {
		for _, a := range l.Attrs {
			if strings.EqualFold(string(a), string(attr)) && selectable(l) {
				return l.Mailbox
			}
		}
	}
	for _, n := range names {
		for _, l := range list {
			if strings.EqualFold(l.Mailbox, n) && selectable(l) {
				return l.Mailbox
			}
		}
	}
	for _, n := range names {
		for _, l := range list {
			if strings.EqualFold(leaf(l), n) && selectable(l) {
				return l.Mailbox
			}
		}
	}
	return ""
}

// leaf is the last hierarchy level of a mailbox name.
func leaf(l *imap.ListData) string {
	name := l.Mailbox
	if l.Delim != 0 {
		if i := strings.LastIndex(name, string(l.Delim)); i >= 0 {
			return name[i+1:]
		}
	}
	return name
}
