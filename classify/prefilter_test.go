package classify

import (
	"regexp"
	"testing"
	"unicode"

	"followupd/message"
)

// The plain-string pre-checks of addressGone and autoReplySignal decide
// exactly as the regexps they spare: every text here gets the same answer
// with and without them.
func TestPrefilterKeepsRegexpAnswers(t *testing.T) {
	oldAnywhere := regexp.MustCompile(`(?:automatic reply:|автоматический ответ:|автоответ:|abwesenheitsnotiz:|自动回复)`)
	texts := []string{
		"",
		"re: коммерческое предложение 123",
		"This address is no longer in use",
		"THE MAILBOX HAS BEEN NO LONGER ACTIVE",
		"Ivan has left the company",
		"Ivan haſ left the company", // (?i)s matches long s
		"Ivan HAS LEFT OUR organisation",
		"Адрес ivan@x больше не используется",
		"адрес ivan@x больше не используется",
		"Адрес ivan@x больше нe используется", // Latin e: no match
		"почтовый ящик больше не обслуживается",
		"он не работает в компании",
		"он не работаеᲅ ᲀ компании", // rounded ve, tall te: (?i) folds them
		"Иван уволился",
		"nicht mehr im Unternehmen",
		"fwd: Re: automatic reply: offer",
		"fwd: автоответ: и автоматический ответ: оба",
		"自动回复: 我不在",
		"no longer with our company",
		"noLonger works here",
	}
	for _, text := range texts {
		for _, auto := range []bool{false, true} {
			rec := &message.Record{Subject: text}
			got, gotWhy := addressGone(rec, auto)
			want := reGoneStrong.MatchString(text + "\n")
			if !want && auto {
				want = reGoneWeak.MatchString(text + "\n")
			}
			if got != want {
				t.Errorf("addressGone(%q, auto %v) = %v (%s), regexps say %v", text, auto, got, gotWhy, want)
			}
		}
		if got, want := findAutoAnywhere(text), oldAnywhere.FindString(text); got != want {
			t.Errorf("findAutoAnywhere(%q) = %q, regexp finds %q", text, got, want)
		}
	}
}

func BenchmarkAddressGoneOrdinary(b *testing.B) {
	rec := &message.Record{Subject: "Re: коммерческое предложение 123"}
	for b.Loop() {
		addressGone(rec, false)
	}
}

func BenchmarkAutoReplySignalOrdinary(b *testing.B) {
	rec := &message.Record{Subject: "Re: коммерческое предложение 123", Headers: map[string]string{}}
	for b.Loop() {
		autoReplySignal(rec)
	}
}

// foldCase's shortcuts agree with the case-folding orbits they skip.
func TestFoldCaseShortcuts(t *testing.T) {
	for r := rune(0); r < 0x500; r++ {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		if got := []rune(foldCase(string(r))); len(got) != 1 || got[0] != m {
			t.Errorf("foldCase(%U) = %U, want %U", r, got, m)
		}
	}
}
