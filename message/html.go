package message

import (
	"html"
	"regexp"
	"strings"
)

var (
	reHTMLDrop    = regexp.MustCompile(`(?is)<!--.*?-->|<(script|style|head|title)\b[^>]*>.*?</(script|style|head|title)\s*>`)
	reHTMLBreak   = regexp.MustCompile(`(?i)<\s*(br|/p|p|/div|div|/tr|/li|li|/h[1-6]|/table|/blockquote|hr)\b[^>]*>`)
	reHTMLCell    = regexp.MustCompile(`(?i)<\s*/t[dh]\s*>`)
	reHTMLTag     = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpaces      = regexp.MustCompile(`[ \t\x{00a0}]+`)
	reBlankLines  = regexp.MustCompile(`\n{3,}`)
	reMetaCharset = regexp.MustCompile(`(?i)<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_\-:.]+)`)
)

// htmlToText reduces HTML to readable text: scripts, styles and comments
// dropped, block ends as line breaks, tags removed, entities decoded,
// runs of spaces and blank lines collapsed. It is for matching words and
// dates, not for display.
func htmlToText(s string) string {
	s = reHTMLDrop.ReplaceAllString(s, "")
	s = reHTMLBreak.ReplaceAllString(s, "\n")
	s = reHTMLCell.ReplaceAllString(s, " ")
	s = reHTMLTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\r", "")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(reSpaces.ReplaceAllString(l, " "))
	}
	s = strings.Join(lines, "\n")
	s = reBlankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}

// htmlMetaCharset finds <meta charset=...> or the http-equiv form in the
// first 4 KB of an HTML part that declares no charset in its header.
func htmlMetaCharset(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	if m := reMetaCharset.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}
