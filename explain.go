package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"followupd/classify"
	"followupd/config"
	"followupd/message"
)

// explainDefaults is the built-in configuration `explain` uses without
// -config: the example rules for offers and invoices, and one placeholder
// sender so a message from seller.example is judged as sent.
const explainDefaults = `
state_dir = "/nonexistent"
[[account]]
address = "sales@seller.example"
password_env = "FOLLOWUPD_UNUSED"
imap = { host = "imap.seller.example" }
smtp = { host = "smtp.seller.example" }

[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)коммерческое предложение|\bкп\b|\boffer\b|\bquot(e|ation)\b|предложение']
  [[rule.step]]
  after = "3 business days"
  template = "t"

[[rule]]
name = "offer-attachment"
kind = "offer"
match.attachment = ["КП*.pdf", "offer*.pdf", "quot*.pdf"]
  [[rule.step]]
  after = "3 business days"
  template = "t"

[[rule]]
name = "invoice"
kind = "invoice"
match.subject = ['(?i)(invoice|сч[её]т)\s*(№|no\.?|#)?\s*(?P<number>[\w/-]+)']
  [[rule.step]]
  after = "5 business days"
  template = "t"

[template.t]
body = "{{.Subject}}"
`

type explainResult struct {
	File             string   `json:"file"`
	Kind             string   `json:"kind,omitempty"`
	Rule             string   `json:"rule,omitempty"`
	Reasons          []string `json:"reasons"`
	FailedRecipients []string `json:"failed_recipients"`
	ReturnDate       *string  `json:"return_date"`
	Error            string   `json:"error,omitempty"`
}

func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: built-in rules)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	sent := fs.Bool("sent", false, "treat every message as sent by us (default: decided by the From address)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: followupd explain [-config FILE] [-json] MESSAGE.eml...")
		return 2
	}
	var cfg *config.Config
	var err error
	if *path != "" {
		cfg, err = config.Load(*path)
	} else {
		cfg, err = config.Parse("(built-in defaults)", []byte(explainDefaults))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cls, err := classify.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "followupd:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	status := 0
	for _, file := range fs.Args() {
		res := explainFile(cfg, cls, file, *sent)
		if res.Error != "" {
			status = 1
		}
		if *asJSON {
			if res.Reasons == nil {
				res.Reasons = []string{}
			}
			if res.FailedRecipients == nil {
				res.FailedRecipients = []string{}
			}
			_ = enc.Encode(res)
			continue
		}
		if res.Error != "" {
			fmt.Fprintf(stdout, "%s: error: %s\n", file, res.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s", file, res.Kind)
		if res.Rule != "" {
			fmt.Fprintf(stdout, " (rule %s)", res.Rule)
		}
		fmt.Fprintln(stdout)
		for _, r := range res.Reasons {
			fmt.Fprintf(stdout, "  - %s\n", r)
		}
		if len(res.FailedRecipients) > 0 {
			fmt.Fprintf(stdout, "  failed recipients: %s\n", strings.Join(res.FailedRecipients, ", "))
		}
		if res.ReturnDate != nil {
			fmt.Fprintf(stdout, "  return date: %s\n", *res.ReturnDate)
		}
	}
	return status
}

func explainFile(cfg *config.Config, cls *classify.Classifier, file string, forceSent bool) (res explainResult) {
	res.File = file
	defer func() {
		if p := recover(); p != nil { // a classifier bug must not hide the other files
			res = explainResult{File: file, Error: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	raw, err := os.ReadFile(file) // a directory or unreadable file fails here
	if err != nil {
		res.Error = err.Error()
		return res
	}
	rec, err := message.Parse(bytes.NewReader(raw), 1<<20)
	if rec == nil {
		res.Error = fmt.Sprintf("parsing: %v", err)
		return res
	}
	// Parse reads anything; a file with not one header field of a
	// message (empty, binary, a config file) is no message to explain.
	if rec.SyntheticID && len(rec.From) == 0 && len(rec.To) == 0 && rec.Subject == "" && rec.Date.IsZero() {
		res.Error = "not a mail message: no Message-ID, From, To, Subject or Date header field"
		return res
	}
	acct, exact := senderAccount(cfg, rec)
	if acct != nil && !exact && !forceSent {
		// The built-in defaults take anyone at seller.example for the
		// sender, but a mail system there writes too: an Exchange NDR
		// comes from MicrosoftExchange…@ the sender's own domain
		// (classify/testdata/exchange-ndr.eml). Automatic mail is judged
		// as incoming.
		in := *rec
		in.Role = message.RoleInbox
		if v := cls.Incoming(&in); v.Kind != classify.KindReply {
			acct = nil
		}
	}
	if forceSent || acct != nil {
		if acct == nil {
			acct = &cfg.Accounts[0]
		}
		rec.Role = message.RoleSent
		v := cls.Sent(acct, rec)
		res.Kind, res.Rule, res.Reasons = "untracked", v.Rule, v.Reasons
		if v.Tracked {
			res.Kind = "tracked"
		}
		return res
	}
	rec.Role = message.RoleInbox
	v := cls.Incoming(rec)
	res.Kind, res.Reasons, res.FailedRecipients = v.Kind.String(), v.Reasons, v.FailedRecipients
	if !v.ReturnDate.IsZero() {
		s := v.ReturnDate.Format("2006-01-02")
		res.ReturnDate = &s
	}
	return res
}

// senderAccount returns the configured account that sent rec, if any;
// exact is false when only the domain matched (built-in defaults).
func senderAccount(cfg *config.Config, rec *message.Record) (acct *config.Account, exact bool) {
	for _, from := range rec.From {
		for i := range cfg.Accounts {
			a := &cfg.Accounts[i]
			if strings.EqualFold(a.Address, from.Addr) {
				return a, true
			}
			if strings.HasSuffix(strings.ToLower(from.Addr), "@"+domainOfAddr(a.Address)) && cfg.File == "(built-in defaults)" {
				acct = a
			}
		}
	}
	return acct, false
}

func domainOfAddr(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return strings.ToLower(a[i+1:])
	}
	return ""
}
