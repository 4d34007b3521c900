package control

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"followupd/config"
)

// Commands are the CLI commands this package runs (see Main).
var Commands = []string{"status", "list", "show", "cancel", "snooze", "approve", "resolve", "backup"}

// Exit codes of Main besides 0 (done) and 2 (usage).
const (
	ExitFailed     = 1 // the daemon refused or failed
	ExitNotRunning = 3 // nothing answers on the socket
)

// DefaultConfig is where -config points by default.
const DefaultConfig = "/etc/followupd/followupd.toml"

// Usage lists the commands for followupd's usage text.
const Usage = `  status [-json]         accounts, connections, follow-ups by state (of the running daemon)
  list [-account A] [-state S] [-rule R] [-json]
                         tracked messages
  show [-json] ID        one follow-up's timeline: history with reasons, send ledger, outcome
  cancel ID              stop following up (reason "cancelled via CLI")
  snooze ID DURATION     move the next step later ("2 days", "3 business days", "36h")
  approve ID...|-all     approval mode: send drafted reminders now
  resolve ID sent|unsent decide a step whose outcome is uncertain
  backup FILE            hot copy of the store ("-": stdout)
                         each takes -config FILE (to find the socket) or -socket PATH
`

// Main runs CLI command cmd with args, writing to stdout and stderr, and
// returns the exit code.
func Main(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", DefaultConfig, "configuration file (to find the control socket)")
	sock := fs.String("socket", "", "control socket (default: from the configuration)")
	var asJSON *bool
	if cmd == "status" || cmd == "list" || cmd == "show" {
		asJSON = fs.Bool("json", false, "print JSON for scripts")
	}
	var lq ListQuery
	if cmd == "list" {
		fs.StringVar(&lq.Account, "account", "", "only this account")
		fs.StringVar(&lq.State, "state", "", "only this state (waiting, held, sending, draft, answered, bounced, stopped, failed, finished, uncertain)")
		fs.StringVar(&lq.Rule, "rule", "", "only this rule")
	}
	var all *bool
	var account *string
	if cmd == "approve" {
		all = fs.Bool("all", false, "approve every drafted step")
		account = fs.String("account", "", "with -all: only this account's")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "followupd %s: "+format+"\n", append([]any{cmd}, a...)...)
		return 2
	}
	path := *sock
	if path == "" {
		var err error
		if path, err = socketFromConfig(*cfgPath); err != nil {
			fmt.Fprintf(stderr, "followupd %s: %v (or pass -socket PATH)\n", cmd, err)
			return ExitFailed
		}
	}
	c := NewClient(path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := &printer{w: stdout}

	var err error
	switch cmd {
	case "status":
		if len(rest) > 0 {
			return usage("takes no arguments")
		}
		var st *Status
		if st, err = c.Status(ctx); err == nil {
			err = p.out(*asJSON, st, func() { p.status(st) })
		}
	case "list":
		if len(rest) > 0 {
			return usage("takes no arguments (filters are -account, -state, -rule)")
		}
		var fus []FollowUp
		if fus, err = c.List(ctx, lq); err == nil {
			if fus == nil {
				fus = []FollowUp{}
			}
			err = p.out(*asJSON, fus, func() { p.list(fus) })
		}
	case "show", "cancel":
		if len(rest) != 1 {
			return usage("want one follow-up ID (see `followupd list`)")
		}
		id, perr := parseID(rest[0])
		if perr != nil {
			return usage("%v", perr)
		}
		if cmd == "show" {
			var th *Thread
			if th, err = c.Show(ctx, id); err == nil {
				err = p.out(*asJSON, th, func() { p.show(th) })
			}
			break
		}
		var f *FollowUp
		if f, err = c.Cancel(ctx, id); err == nil {
			fmt.Fprintf(stdout, "#%d cancelled: %s (%s)\n", f.ID, f.State, f.Subject)
		}
	case "snooze":
		if len(rest) != 2 {
			return usage("want ID DURATION, e.g. `followupd snooze 12 \"2 business days\"`")
		}
		id, perr := parseID(rest[0])
		if perr != nil {
			return usage("%v", perr)
		}
		by := strings.Join(rest[1:], " ")
		var d config.Delay
		if perr := d.UnmarshalText([]byte(by)); perr != nil || d.IsZero() {
			return usage("duration %q: want e.g. \"36h\", \"2 days\" or \"3 business days\"", by)
		}
		var f *FollowUp
		if f, err = c.Snooze(ctx, id, SnoozeRequest{By: by}); err == nil {
			fmt.Fprintf(stdout, "#%d snoozed by %s: step %d now due %s\n", f.ID, d, f.Step, when(f.Due))
		}
	case "resolve":
		if len(rest) != 2 || (rest[1] != "sent" && rest[1] != "unsent") {
			return usage("want ID sent|unsent: was the uncertain step's reminder sent (check the recipient or the SMTP log)?")
		}
		id, perr := parseID(rest[0])
		if perr != nil {
			return usage("%v", perr)
		}
		var f *FollowUp
		if f, err = c.Resolve(ctx, id, ResolveRequest{Outcome: rest[1]}); err == nil {
			fmt.Fprintf(stdout, "#%d resolved as %s: %s\n", f.ID, rest[1], p.next(f))
		}
	case "approve":
		req := ApproveRequest{All: *all, Account: *account}
		for _, a := range rest {
			id, perr := parseID(a)
			if perr != nil {
				return usage("%v", perr)
			}
			req.IDs = append(req.IDs, id)
		}
		if req.All == (len(req.IDs) > 0) {
			return usage("want follow-up IDs or -all")
		}
		var res *ApproveResult
		if res, err = c.Approve(ctx, req); err == nil {
			for _, f := range res.Approved {
				fmt.Fprintf(stdout, "#%d approved: step %d goes out %s (%s)\n", f.ID, f.Step, sendWhen(f.Due), f.Subject)
			}
			for _, r := range res.Refused {
				fmt.Fprintf(stderr, "#%d not approved: %s\n", r.ID, r.Reason)
			}
			if len(res.Approved) == 0 && req.All && len(res.Refused) == 0 {
				fmt.Fprintln(stdout, "no drafted reminders wait for approval")
			}
			if len(res.Refused) > 0 {
				return ExitFailed
			}
		}
	case "backup":
		if len(rest) != 1 {
			return usage("want one FILE (\"-\" for stdout)")
		}
		var n int64
		if n, err = backupTo(ctx, c, rest[0], stdout); err == nil && rest[0] != "-" {
			fmt.Fprintf(stdout, "backup: %d bytes written to %s\n", n, rest[0])
		}
	default:
		return usage("unknown command")
	}
	if err != nil {
		fmt.Fprintf(stderr, "followupd %s: %v\n", cmd, err)
		var nr *NotRunningError
		if errors.As(err, &nr) {
			return ExitNotRunning
		}
		return ExitFailed
	}
	return 0
}

// socketFromConfig finds the control socket for the configuration at
// path. The configuration's control_socket (with its default) comes first;
// because a shell has no $RUNTIME_DIRECTORY while the systemd service
// does, /run/followupd and the state directory are tried too, and the
// first that exists wins.
func socketFromConfig(path string) (string, error) {
	cfg, err := config.Load(path)
	if cfg == nil {
		return "", err
	}
	// A configuration with problems still names the socket: the daemon may
	// run with the previous, good one.
	cands := []string{cfg.ControlSocket, "/run/followupd/control.sock", filepath.Join(cfg.StateDir, "control.sock")}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().Type() == fs.ModeSocket {
			return c, nil
		}
	}
	return cands[0], nil
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%q is not a follow-up ID (a number, see `followupd list`)", s)
	}
	return id, nil
}

// backupTo writes the daemon's store to file via a temporary file in the
// same directory, synced and renamed, so FILE is complete or absent.
func backupTo(ctx context.Context, c *Client, file string, stdout io.Writer) (int64, error) {
	if file == "-" {
		return c.Backup(ctx, stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("creating backup file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	n, err := c.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return n, fmt.Errorf("placing backup at %s: %w", file, err)
	}
	return n, nil
}

type printer struct{ w io.Writer }

func (p *printer) out(asJSON bool, v any, text func()) error {
	if !asJSON {
		text()
		return nil
	}
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var stateOrder = []string{"waiting", "held", "sending", "draft", "uncertain", "answered", "bounced", "stopped", "failed", "finished"}

func (p *printer) status(st *Status) {
	ready := "ready"
	if !st.Ready {
		ready = "first sync in progress"
	}
	fmt.Fprintf(p.w, "followupd %s, up %s (%s)\n", st.Version, st.Now.Sub(st.Started).Round(time.Second), ready)
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nACCOUNT\tMODE\tFOLDER\tCONNECTION\tLAST SYNC\tRECONNECTS\tLAST ERROR")
	for _, a := range st.Accounts {
		for _, f := range a.Folders {
			conn := "down"
			if f.Connected {
				conn = "connected"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\t%d\t%s\n", a.Name, a.Mode, f.Mailbox, f.Role, conn, when(f.LastSync), f.Reconnects, f.LastError)
		}
		if len(a.Folders) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\tnot started\t-\t0\t\n", a.Name, a.Mode)
		}
	}
	tw.Flush()
	var parts []string
	total := 0
	for _, s := range stateOrder {
		if n := st.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
			total += n
		}
	}
	if len(parts) == 0 {
		parts = []string{"none yet"}
	}
	fmt.Fprintf(p.w, "\nfollow-ups (%d): %s\n", total, strings.Join(parts, ", "))
	if st.NextDue != nil {
		fmt.Fprintf(p.w, "next due: #%d at %s\n", st.NextDue.ID, when(st.NextDue.Due))
	}
	if n := st.Counts["draft"]; n > 0 {
		fmt.Fprintf(p.w, "%d reminder(s) wait for approval: followupd list -state draft; followupd approve ID|-all\n", n)
	}
	if n := st.Counts["uncertain"]; n > 0 {
		fmt.Fprintf(p.w, "%d step(s) need a decision: followupd list -state uncertain; followupd resolve ID sent|unsent\n", n)
	}
	if st.Metrics != "" {
		fmt.Fprintf(p.w, "metrics: http://%s/metrics\n", st.Metrics)
	}
}

func (p *printer) list(fus []FollowUp) {
	if len(fus) == 0 {
		fmt.Fprintln(p.w, "no follow-ups match")
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACCOUNT\tRULE\tSTATE\tSTEP\tNEXT\tTO\tSUBJECT")
	for _, f := range fus {
		next := "-"
		if !f.Due.IsZero() {
			next = when(f.Due)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Account, f.Rule, f.State, stepOf(f), next, strings.Join(f.To, ", "), clip(f.Subject, 50))
	}
	tw.Flush()
}

func (p *printer) show(th *Thread) {
	f := th.FollowUp
	fmt.Fprintf(p.w, "#%d  %s, step %s  (rule %s", f.ID, f.State, stepOf(f), f.Rule)
	if f.Kind != "" {
		fmt.Fprintf(p.w, ", %s", f.Kind)
	}
	fmt.Fprintln(p.w, ")")
	fmt.Fprintf(p.w, "  subject:  %s\n", f.Subject)
	fmt.Fprintf(p.w, "  account:  %s (%s)\n", f.Account, f.From)
	fmt.Fprintf(p.w, "  to:       %s\n", strings.Join(f.To, ", "))
	if len(f.Cc) > 0 {
		fmt.Fprintf(p.w, "  cc:       %s\n", strings.Join(f.Cc, ", "))
	}
	fmt.Fprintf(p.w, "  sent:     %s  <%s>\n", when(f.SentAt), f.MessageID)
	fmt.Fprintf(p.w, "  next:     %s\n", p.next(&f))
	if f.Outcome != "" {
		fmt.Fprintf(p.w, "  outcome:  %s\n", f.Outcome)
	}
	fmt.Fprintln(p.w, "\ntimeline:")
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, h := range th.History {
		fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\tstep %d\t%s\n", when(h.At), h.Event, h.From, h.To, h.Step, h.Reason)
	}
	tw.Flush()
	if len(th.Ledger) > 0 {
		fmt.Fprintln(p.w, "\nsend ledger:")
		tw = tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		for _, e := range th.Ledger {
			done := "-"
			if !e.Done.IsZero() {
				done = when(e.Done)
			}
			fmt.Fprintf(tw, "  step %d\t%s\t<%s>\tintent %s\tdone %s\t%s\n", e.Step, e.State, e.MessageID, when(e.Intent), done, e.Detail)
		}
		tw.Flush()
	}
}

// next says what happens next to f, in words.
func (p *printer) next(f *FollowUp) string {
	switch f.State {
	case "waiting":
		return fmt.Sprintf("step %d due %s", f.Step, when(f.Due))
	case "held":
		return fmt.Sprintf("held (contact away) until %s, then step %d", when(f.HeldUntil), f.Step)
	case "sending":
		return fmt.Sprintf("step %d is being sent as <%s>", f.Step, f.SendID)
	case "draft":
		return fmt.Sprintf("step %d waits in Drafts for approval: followupd approve %d", f.Step, f.ID)
	case "uncertain":
		return fmt.Sprintf("step %d may or may not have been sent: followupd resolve %d sent|unsent", f.Step, f.ID)
	case "finished":
		return "chain finished: every step sent, no answer yet"
	}
	return "nothing: " + f.State
}

func stepOf(f FollowUp) string {
	if f.Steps > 0 {
		return fmt.Sprintf("%d/%d", f.Step, f.Steps)
	}
	return strconv.Itoa(f.Step)
}

// when formats a time in the CLI's local zone.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04 MST")
}

func sendWhen(due time.Time) string {
	if due.IsZero() {
		return "now"
	}
	return "from " + when(due) + " (inside the send window, paced)"
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
