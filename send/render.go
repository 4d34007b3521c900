package send

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"followupd/config"
)

// Render errors.
var (
	ErrNoTemplate = errors.New("send: no template")
	ErrEmptyBody  = errors.New("send: template rendered an empty body")
)

// Render executes a step's template with data. The subject defaults to
// "Re: " + data.Subject when the template has none; a reply prefix is never
// stacked (see ReplySubject: an original "Отв: x" or "RE: x" stays as it
// is). The subject is one line; text must not be empty; html is "" when
// the template has no HTML part.
func Render(t *config.Template, data config.TemplateData) (subject, text, html string, err error) {
	if t == nil {
		return "", "", "", ErrNoTemplate
	}
	if t.BodyT == nil {
		return "", "", "", fmt.Errorf("%w: body is empty", ErrNoTemplate)
	}
	if t.SubjectT != nil {
		if subject, err = execute(t.SubjectT, "subject", data); err != nil {
			return "", "", "", err
		}
		subject = ReplySubject(oneLine(subject))
	} else {
		subject = ReplySubject("Re: " + oneLine(data.Subject))
	}
	if text, err = execute(t.BodyT, "body", data); err != nil {
		return "", "", "", err
	}
	if strings.TrimSpace(text) == "" {
		return "", "", "", fmt.Errorf("%w (template %q)", ErrEmptyBody, t.BodyT.Name())
	}
	if t.HTMLT != nil {
		if html, err = execute(t.HTMLT, "html", data); err != nil {
			return "", "", "", err
		}
	}
	return subject, text, html, nil
}

func execute(t *template.Template, part string, data config.TemplateData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("send: rendering %s of template %q: %w", part, t.Name(), err)
	}
	if !utf8.Valid(b.Bytes()) {
		return "", fmt.Errorf("send: rendering %s of template %q: output is not valid UTF-8", part, t.Name())
	}
	return b.String(), nil
}

// replyPrefixes are the reply markers mail clients put before a subject,
// lower-case, without the colon: English, German, Nordic, Dutch, Polish,
// Turkish, Russian, Chinese.
var replyPrefixes = []string{"re", "aw", "sv", "vs", "antw", "odp", "ynt", "отв", "ответ", "回复", "答复"}

// ReplySubject collapses stacked reply prefixes at the start of s into one,
// the innermost, so a reply to a subject that already carries a prefix keeps
// it as the thread shows it: "Re: RE: offer" → "RE: offer", "Re: Отв: x" →
// "Отв: x", "Re: x" stays. Counted forms ("Re[2]:", "Re(3):"), a space before
// the colon and the full-width colon are recognised.
func ReplySubject(s string) string {
	s = strings.TrimSpace(s)
	last, rest, ok := cutReplyPrefix(s)
	if !ok {
		return s
	}
	for {
		p, r, ok := cutReplyPrefix(rest)
		if !ok {
			break
		}
		last, rest = p, r
	}
	if rest == "" {
		return last
	}
	return last + " " + rest
}

// cutReplyPrefix splits "Re: rest" into ("Re:", "rest"), keeping the
// prefix as written.
func cutReplyPrefix(s string) (prefix, rest string, ok bool) {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) {
			break
		}
		i += n
	}
	if i == 0 {
		return "", "", false
	}
	word := strings.ToLower(s[:i])
	known := false
	for _, p := range replyPrefixes {
		if word == p {
			known = true
			break
		}
	}
	if !known {
		return "", "", false
	}
	j := i
	// Optional counter: Re[2]: or Re(2):
	if j < len(s) && (s[j] == '[' || s[j] == '(') {
		closer := byte(']')
		if s[j] == '(' {
			closer = ')'
		}
		k := j + 1
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j+1 || k >= len(s) || s[k] != closer {
			return "", "", false
		}
		j = k + 1
	}
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j < len(s) && (s[j] == ':' || strings.HasPrefix(s[j:], "：")) {
		prefix = strings.TrimRight(s[:j], " ")
		if s[j] == ':' {
			j++
		} else {
			j += len("：")
		}
		return prefix + ":", strings.TrimSpace(s[j:]), true
	}
	return "", "", false
}
