package send

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// Commands name the stage of a submission an Error happened in.
const (
	CmdCheck   = "check"   // the reminder itself is unusable; nothing was dialled
	CmdConnect = "connect" // dial, TLS, EHLO, STARTTLS
	CmdAuth    = "auth"    // SMTP AUTH
	CmdMail    = "mail"    // MAIL FROM
	CmdRcpt    = "rcpt"    // RCPT TO
	CmdData    = "data"    // the DATA command
	CmdMessage = "message" // writing the content and the reply to its end
)

// Error is a failed submission. Callers branch on Permanent (the follow-up
// becomes failed) and MaybeSent (the server may have accepted the message;
// check Sent before retrying). See the package doc for how failures are
// sorted.
type Error struct {
	Permanent bool
	Code      int    // SMTP reply code, 0 when the server did not answer
	Enhanced  string // RFC 3463 status ("5.1.1"), "" when absent
	Text      string // server reply text without code and enhanced status
	MessageID string // the reminder's Message-ID, without <>
	Err       error

	// Command is the stage that failed (CmdConnect, CmdRcpt, ...).
	Command string
	// Rcpts are the recipients the server refused, when RCPT TO failed.
	Rcpts []string
	// MaybeSent: the message was written in full but no reply to the end of
	// DATA was read; the server may have accepted it.
	MaybeSent bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		fmt.Fprintf(&b, "smtp %s: %d %s %s", e.Command, e.Code, e.Enhanced, e.Text)
	}
	if e.Permanent {
		b.WriteString(" (permanent)")
	}
	if e.MaybeSent {
		b.WriteString(" (message may have been accepted)")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is, or wraps, a permanent *Error.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

var enhancedRE = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})\b`)

// splitEnhanced separates an RFC 2034 enhanced status from reply text.
func splitEnhanced(text string) (enhanced, rest string) {
	text = strings.TrimSpace(text)
	if m := enhancedRE.FindString(text); m != "" {
		return m, strings.TrimSpace(text[len(m):])
	}
	return "", text
}

// isAuthReply reports RFC 4954 §6 replies that say the account, not the
// message, is the problem: 530 auth required, 534 mechanism too weak, 535
// bad credentials, 538 encryption required.
func isAuthReply(code int, enhanced string) bool {
	switch code {
	case 530, 534, 535, 538:
		return true
	}
	switch enhanced {
	case "5.7.8", "5.7.9", "5.7.11":
		return true
	}
	return false
}

// replyOf extracts an SMTP reply from err: a *textproto.Error (go-mail's
// SMTP client) or a *mail.SendError (go-mail's Client.Send).
func replyOf(err error) (code int, enhanced, text string, ok bool) {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		enhanced, text = splitEnhanced(strings.ReplaceAll(tp.Msg, "\n", " "))
		return tp.Code, enhanced, text, true
	}
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		_, text = splitEnhanced(se.Error())
		return se.ErrorCode(), se.EnhancedStatusCode(), text, true
	}
	return 0, "", "", false
}

// permanentAt says whether a reply code at a stage fails the follow-up.
func permanentAt(cmd string, code int, enhanced string) bool {
	if code < 500 || code > 599 || isAuthReply(code, enhanced) {
		return false
	}
	switch cmd {
	case CmdRcpt, CmdData, CmdMessage:
		return true
	}
	return false
}

// newError sorts err, which happened at stage cmd while talking to addr.
// ctx is the submission's context: when it has ended, the cancellation is
// the cause whatever the connection reported.
func newError(ctx context.Context, addr, cmd, msgID string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = &Error{Command: cmd, MessageID: msgID}
	if code, enh, text, ok := replyOf(err); ok {
		e.Code, e.Enhanced, e.Text = code, enh, text
		var se *mail.SendError
		if errors.As(err, &se) {
			// go-mail's IsTemp only looks at a leading '4', so a network
			// error counts as "not temporary" there; a code is needed.
			e.Permanent = !se.IsTemp() && permanentAt(cmd, code, enh)
		} else {
			e.Permanent = permanentAt(cmd, code, enh)
		}
	}
	if cerr := ctx.Err(); cerr != nil && e.Code == 0 {
		e.Err = fmt.Errorf("smtp %s: %s: %w (%w)", addr, cmd, cerr, err)
		return e
	}
	e.Err = fmt.Errorf("smtp %s: %s: %w%s", addr, cmd, err, hint(err))
	return e
}

// hint names the config key that fixes a TLS failure.
func hint(err error) string {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &ua):
		return ": set smtp.ca_file to the PEM of the CA that signed the server's certificate"
	case errors.As(err, &he):
		return ": smtp.host must be a name the server's certificate covers"
	case errors.As(err, &ci):
		return ": the server's certificate is invalid (expired or not for TLS servers)"
	case errors.As(err, &rhe):
		return `: the server did not answer with TLS; port 587 usually wants security = "starttls"`
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		return `: the server offers no STARTTLS; port 465 wants security = "tls"`
	}
	return ""
}
