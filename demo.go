package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"followupd/config"
	"followupd/daemon"
	"followupd/imapwatch/imaptest"
	"followupd/internal/smtptest"
	"followupd/message"
	"followupd/store"
)

// The demo's story: Ivan, a sales manager, sends four letters. Anna never
// answers her offer; Boris never pays his invoice; Clara answers hers;
// Dmitry is on holiday and his out-of-office answers for him. followupd
// must remind Anna, Boris and Dmitry — twice each — and never Clara.
const (
	demoSeller   = "ivan@seller.example"
	demoPassword = "demo"
	demoStep     = 4 * time.Second
)

var demoClients = []string{"anna@client-a.example", "boris@client-b.example", "clara@client-c.example", "dmitry@client-d.example"}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "also print the daemon's log")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := runDemo(stdout, stderr, *verbose); err != nil {
		fmt.Fprintln(stderr, "demo failed:", err)
		return 1
	}
	return 0
}

type timeline struct {
	mu    sync.Mutex
	start time.Time
	w     io.Writer
}

func (t *timeline) printf(who, what, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%6.1fs  %-10s %-11s %s\n", time.Since(t.start).Seconds(), who, what, fmt.Sprintf(format, args...))
}

func runDemo(stdout, stderr io.Writer, verbose bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tl := &timeline{start: time.Now(), w: stdout}

	// The mail world: one in-memory IMAP server holding everyone's
	// mailboxes, and an SMTP server that delivers into it.
	imapSrv, err := imaptest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer imapSrv.Close()
	if err := imapSrv.AddUser(demoSeller, demoPassword, "INBOX", "Sent", "Drafts"); err != nil {
		return err
	}
	for _, c := range demoClients {
		if err := imapSrv.AddUser(c, demoPassword, "INBOX"); err != nil {
			return err
		}
	}
	smtpSrv, err := smtptest.Start("127.0.0.1:0", smtptest.Options{
		Users: map[string]string{demoSeller: demoPassword},
		OnMessage: func(m smtptest.Message) {
			rec, _ := message.ParseHeader(m.Data)
			for _, rcpt := range m.To {
				if err := imapSrv.Append(strings.ToLower(rcpt), "INBOX", m.Data); err != nil {
					fmt.Fprintln(stderr, "demo: delivering to", rcpt, ":", err)
				}
				if rec != nil {
					tl.printf(short(rcpt), "receives", "%q  (In-Reply-To: <%s>)", rec.Subject, strings.Join(rec.InReplyTo, " "))
				}
			}
		},
	})
	if err != nil {
		return err
	}
	defer smtpSrv.Close()

	stateDir, err := os.MkdirTemp("", "followupd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	os.Setenv("FOLLOWUPD_DEMO_PASSWORD", demoPassword)
	cfg, err := config.Parse("demo.toml", []byte(demoConfig(stateDir, imapSrv.Addr(), smtpSrv.Addr(), time.Now())))
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}

	logw := io.Discard
	if verbose {
		logw = stderr
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var mu sync.Mutex
	sent := map[string]int{} // recipient -> reminders sent
	finished := make(chan struct{})
	var once sync.Once
	d, err := daemon.New(cfg, daemon.Options{
		Logger:       logger,
		ReplyWait:    500 * time.Millisecond,
		ReconnectMin: 100 * time.Millisecond,
		OnEvent: func(ev daemon.Event) {
			tl.printf("followupd", ev.Kind, "%s", ev.Text)
			if ev.Kind == "sent" {
				mu.Lock()
				defer mu.Unlock()
				sent[ev.MessageID]++
				total := 0
				for _, n := range sent {
					total += n
				}
				if total == 6 {
					once.Do(func() { close(finished) })
				}
			}
		},
	})
	if err != nil {
		return err
	}
	defer d.Close()

	fmt.Fprintf(stdout, "followupd demo: %s sends four letters; reminders are due %s after each letter and each reminder.\n",
		demoSeller, demoStep)
	fmt.Fprintf(stdout, "IMAP %s (in-memory), SMTP %s (in-process); state in %s\n\n", imapSrv.Addr(), smtpSrv.Addr(), stateDir)

	runCtx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case <-d.Ready():
	case <-ctx.Done():
		return fmt.Errorf("daemon did not become ready")
	}
	tl.printf("followupd", "ready", "watching INBOX and Sent of %s", demoSeller)

	// Ivan's letters, as his mail client would: deliver, then save to Sent.
	offers := []struct{ to, name, subject, body string }{
		{demoClients[0], "Анна Смирнова", "Коммерческое предложение на поставку насосов", "Анна, добрый день! Направляю КП во вложении."},
		{demoClients[1], "Boris Kuznetsov", "Invoice 2026-117 for October services", "Boris, please find invoice 2026-117 attached."},
		{demoClients[2], "Clara Weber", "Offer: annual maintenance contract", "Clara, here is our offer as discussed."},
		{demoClients[3], "Dmitry Orlov", "Quote for 40 valves", "Dmitry, our quote is attached."},
	}
	ids := make([]string, len(offers))
	for i, o := range offers {
		ids[i] = fmt.Sprintf("demo-%d-%d@seller.example", i+1, time.Now().UnixNano())
		raw := demoMessage(ids[i], "", "Иван Петров <"+demoSeller+">", o.name+" <"+o.to+">", o.subject, o.body, time.Now(), nil)
		if err := imapSrv.Append(o.to, "INBOX", raw); err != nil {
			return err
		}
		if err := imapSrv.Append(demoSeller, "Sent", raw, `\Seen`); err != nil {
			return err
		}
		tl.printf("ivan", "sends", "%q to %s", o.subject, o.to)
	}

	// Clara answers; Dmitry's out-of-office answers for him.
	time.Sleep(1500 * time.Millisecond)
	reply := demoMessage("reply-clara@client-c.example", ids[2], "Clara Weber <"+demoClients[2]+">", "Иван Петров <"+demoSeller+">",
		"Re: "+offers[2].subject, "Thanks Ivan, we accept. Please send the contract.", time.Now(), nil)
	if err := imapSrv.Append(demoSeller, "INBOX", reply); err != nil {
		return err
	}
	tl.printf("clara", "answers", "%q", "Re: "+offers[2].subject)
	ooo := demoMessage("ooo-dmitry@client-d.example", ids[3], "Dmitry Orlov <"+demoClients[3]+">", demoSeller,
		"Автоматический ответ: "+offers[3].subject, "Я в отпуске до конца месяца. I am out of the office.", time.Now(),
		map[string]string{"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"})
	if err := imapSrv.Append(demoSeller, "INBOX", ooo); err != nil {
		return err
	}
	tl.printf("dmitry", "auto-reply", "%q", "Автоматический ответ: "+offers[3].subject)

	select {
	case <-finished:
	case <-ctx.Done():
		stopDaemon()
		<-done
		return fmt.Errorf("timed out waiting for the reminders")
	}
	// Give a wrongly scheduled extra reminder a chance to show itself.
	time.Sleep(demoStep + time.Second)
	stopDaemon()
	if err := <-done; err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nFinal state of every follow-up:")
	fus, err := d.Store().List(store.Filter{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tTO\tSUBJECT\tSTATE\tREMINDERS\tWHY")
	for _, f := range fus {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%s\n", f.ID, addrList(f.To), f.Subject, f.State, len(f.Sent), f.Outcome)
	}
	tw.Flush()
	// The story's promise, checked: Clara got nothing, the others two each.
	got := map[string]int{}
	for _, m := range smtpSrv.Messages() {
		for _, r := range m.To {
			got[strings.ToLower(r)]++
		}
	}
	want := map[string]int{demoClients[0]: 2, demoClients[1]: 2, demoClients[2]: 0, demoClients[3]: 2}
	for who, n := range want {
		if got[who] != n {
			return fmt.Errorf("%s received %d reminders, want %d", who, got[who], n)
		}
	}
	fmt.Fprintln(stdout, "\nOK: Anna, Boris and Dmitry (whose out-of-office is not an answer) got two reminders each, threaded; Clara, who answered, got none.")
	return nil
}

func demoConfig(stateDir, imapAddr, smtpAddr string, now time.Time) string {
	host, port := splitHostPort(imapAddr)
	shost, sport := splitHostPort(smtpAddr)
	// The demo runs whatever day it is: make today and the next days working days.
	var workdays []string
	for i := 0; i < 3; i++ {
		workdays = append(workdays, fmt.Sprintf("%q", now.AddDate(0, 0, i).Format("2006-01-02")))
	}
	return fmt.Sprintf(`
state_dir = %q
time_zone = "UTC"
workdays = [%s]

[[account]]
name = "ivan"
address = %q
display_name = "Иван Петров"
password_env = "FOLLOWUPD_DEMO_PASSWORD"
max_per_hour = 36000
imap = { host = %q, port = %s, security = "none" }
smtp = { host = %q, port = %s, security = "none" }

[[rule]]
name = "offer"
kind = "offer"
match.subject = ['(?i)коммерческое предложение|\bкп\b|\boffer\b|\bquote\b']
  [[rule.step]]
  after = "%s"
  template = "gentle"
  [[rule.step]]
  after = "%s"
  template = "second"

[[rule]]
name = "invoice"
kind = "invoice"
match.subject = ['(?i)(invoice|сч[её]т)\s*(№\s*)?(?P<number>[\w-]+)']
  [[rule.step]]
  after = "%s"
  template = "invoice"
  [[rule.step]]
  after = "%s"
  template = "second"

[template.gentle]
body = """{{if .RecipientFirstName}}{{.RecipientFirstName}}, {{end}}добрый день!
Хотел уточнить, удалось ли посмотреть моё письмо от {{.SentDateText}} «{{.Subject}}»?
С уважением, {{.SenderName}}"""

[template.second]
body = """Hello{{if .RecipientFirstName}} {{.RecipientFirstName}}{{end}},
just checking in once more on "{{.Subject}}". Happy to answer any questions.
Best regards, {{.SenderName}}"""

[template.invoice]
body = """Hello{{if .RecipientFirstName}} {{.RecipientFirstName}}{{end}},
a friendly reminder about invoice {{.Vars.number}} sent on {{.SentDateText}}.
Best regards, {{.SenderName}}"""
`, stateDir, strings.Join(workdays, ", "), demoSeller, host, port, shost, sport, demoStep, demoStep, demoStep, demoStep)
}

func demoMessage(id, inReplyTo, from, to, subject, body string, date time.Time, extra map[string]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", inReplyTo, inReplyTo)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", encodeAddr(from), encodeAddr(to), mimeWord(subject), date.Format(time.RFC1123Z))
	for k, v := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n")
	return []byte(b.String())
}

func encodeAddr(s string) string {
	if i := strings.Index(s, " <"); i > 0 {
		return mimeWord(s[:i]) + s[i:]
	}
	return s
}

func mimeWord(s string) string {
	for _, r := range s {
		if r > 127 {
			return mimeQ(s)
		}
	}
	return s
}

func short(addr string) string {
	if i := strings.IndexByte(addr, '@'); i > 0 {
		return addr[:i]
	}
	return addr
}

func addrList(as []message.Address) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Addr)
	}
	return strings.Join(s, ",")
}

func mimeQ(s string) string { return mime.BEncoding.Encode("utf-8", s) }

func splitHostPort(addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "0"
	}
	return h, p
}
