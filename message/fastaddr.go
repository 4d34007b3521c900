package message

import (
	"io"
	"mime"
	"strings"
)

// fastAddressList reads the address lists nearly all mail has — bare
// addresses, <addr>, and display names of atoms, quoted strings without
// escapes and RFC 2047 words before <addr> — without net/mail, which
// allocates a dozen times per address and was a third of an initial sync's
// header parsing (bench/NOTES.md). It gives up (ok=false) on anything
// else: 8-bit or control bytes, comments, groups, escapes, dots or other
// specials in a display name, domain literals, empty list entries, a word
// in a charset we cannot read; slowAddressList then reads it as before.
// When it does answer, the answer is exactly slowAddressList's
// (FuzzFastAddressList checks that).
func fastAddressList(dec *mime.WordDecoder, s string) (list []Address, ok bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c > 0x7e || c == '(' || c == ')' || c == '\\' || c == ';' || c == ':' || c == '[' {
			return nil, false
		}
	}
	for len(s) > 0 {
		var entry string
		entry, s, ok = nextEntry(s)
		if !ok {
			return nil, false
		}
		name, addr, ok := splitEntry(entry)
		if !ok {
			return nil, false
		}
		if name != "" {
			if name, ok = phraseText(dec, name); !ok {
				return nil, false
			}
		}
		if ad, ok := makeAddress(dec, name, addr); ok {
			list = append(list, ad)
		}
	}
	return list, true
}

// nextEntry splits s at its first ',' outside a quoted string; an empty
// entry, or a list ending in ',', is not ours.
func nextEntry(s string) (entry, rest string, ok bool) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				entry, rest = trimWS(s[:i]), s[i+1:]
				return entry, rest, entry != "" && trimWS(rest) != ""
			}
		}
	}
	entry = trimWS(s)
	return entry, "", entry != "" && !inQuote
}

func trimWS(s string) string { return strings.Trim(s, " \t") }

// splitEntry reads `addr-spec`, `<addr-spec>` or `phrase <addr-spec>`.
func splitEntry(e string) (phrase, addr string, ok bool) {
	if !strings.HasSuffix(e, ">") {
		return "", e, isAddrSpec(e)
	}
	lt := strings.LastIndexByte(e, '<')
	if lt < 0 || strings.IndexByte(e[lt+1:len(e)-1], '<') >= 0 || strings.IndexByte(e[:lt], '>') >= 0 {
		return "", "", false
	}
	addr = e[lt+1 : len(e)-1]
	phrase = trimWS(e[:lt])
	if !isAddrSpec(addr) {
		return "", "", false
	}
	return phrase, addr, phrase == "" || isPhrase(phrase)
}

// isAddrSpec: dot-atom "@" dot-atom (no quoted local part, no literal).
func isAddrSpec(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && isDotAtom(s[:at]) && isDotAtom(s[at+1:])
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext is RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isPhrase: words (atoms without dots, or quoted strings without escapes)
// separated by blanks.
func isPhrase(s string) bool {
	for len(s) > 0 {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return false
			}
			s = s[end+2:]
		} else {
			n := 0
			for n < len(s) && isAtext(s[n]) {
				n++
			}
			if n == 0 {
				return false
			}
			s = s[n:]
		}
		if len(s) > 0 {
			if s[0] != ' ' && s[0] != '\t' {
				return false
			}
			s = strings.TrimLeft(s, " \t")
		}
	}
	return true
}

// phraseText is the display name net/mail's consumePhrase makes of an
// isPhrase phrase: quoted strings as they are, atoms decoded when they are
// RFC 2047 words, words joined by one space except between two decoded
// words. A word in a charset we cannot read is not ours.
func phraseText(dec *mime.WordDecoder, s string) (string, bool) {
	var words []string
	var enc strings.Builder
	for len(s) > 0 {
		var word string
		encoded := false
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			word, s = s[1:end+1], s[end+2:]
		} else {
			n := 0
			for n < len(s) && isAtext(s[n]) {
				n++
			}
			word, s = s[:n], s[n:]
			if strings.HasPrefix(word, "=?") {
				var ok bool
				if word, encoded, ok = decodeWord(dec, word); !ok {
					return "", false
				}
			}
		}
		s = strings.TrimLeft(s, " \t")
		switch {
		case encoded:
			enc.WriteString(word)
		case enc.Len() > 0:
			words = append(words, enc.String(), word)
			enc.Reset()
		default:
			words = append(words, word)
		}
	}
	if enc.Len() > 0 {
		words = append(words, enc.String())
	}
	return strings.Join(words, " "), true
}

// decodeWord decodes an RFC 2047 word as net/mail does: not a valid word
// leaves it as written (encoded=false); a charset error is not ours
// (ok=false).
func decodeWord(dec *mime.WordDecoder, w string) (word string, encoded, ok bool) {
	charsetErr := false
	d := *dec
	d.CharsetReader = func(cs string, in io.Reader) (io.Reader, error) {
		if dec.CharsetReader == nil {
			charsetErr = true
			return nil, io.ErrUnexpectedEOF
		}
		r, err := dec.CharsetReader(cs, in)
		if err != nil {
			charsetErr = true
		}
		return r, err
	}
	out, err := d.Decode(w)
	switch {
	case err == nil:
		return out, true, true
	case charsetErr:
		return "", false, false
	}
	return w, false, true
}
