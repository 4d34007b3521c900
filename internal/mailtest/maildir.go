package mailtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Maildir returns the Maildir++ directory of user's mailbox ("INBOX" or a
// top-level folder such as "Sent"), with cur, new and tmp created and owned
// by the mail uid, so a benchmark can write thousands of message files
// directly (name them "<unique>:2,<flags>" in cur) and let Dovecot index
// them on the next SELECT, instead of one APPEND at a time. Write while no
// client has the mailbox selected.
func (s *Stack) Maildir(user, mailbox string) (string, error) {
	name := strings.ToLower(user)
	if _, ok := s.users[name]; !ok {
		return "", fmt.Errorf("mailtest: maildir of unknown user %q", user)
	}
	at := strings.LastIndexByte(name, '@')
	home := s.path("mail", name[at+1:], name[:at])
	dir := filepath.Join(home, "Maildir")
	if !strings.EqualFold(mailbox, "INBOX") {
		if strings.ContainsAny(mailbox, "/.") || mailbox == "" {
			return "", fmt.Errorf("mailtest: maildir of %q: only top-level folders without dots", mailbox)
		}
		dir = filepath.Join(dir, "."+mailbox)
	}
	for _, d := range []string{filepath.Dir(home), home, filepath.Join(home, "Maildir"), dir,
		filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("mailtest: creating %s: %w", d, err)
		}
		if err := os.Chown(d, mailUID, mailUID); err != nil {
			return "", fmt.Errorf("mailtest: chown %s: %w", d, err)
		}
	}
	return dir, nil
}

// MailUID is the uid (and gid) that owns the mail files Dovecot reads.
const MailUID = mailUID
