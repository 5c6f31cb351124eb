package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/opxhq/opx/xdg"
)

// Record is one ACCESS_DECISION line as read back.
type Record struct {
	Timestamp string    `json:"timestamp"`
	Event     string    `json:"event"`
	Peer      Peer      `json:"peer_info"`
	Requester Requester `json:"requester"`
	Action    string    `json:"action"` // "" in files of older versions: read
	Reference string    `json:"reference"`
	Account   string    `json:"account,omitempty"` // "" for the default account
	// IdentityKind and Identity: the service account or Connect server
	// (kind, short fingerprint) an op:// read was made as; "" for the
	// desktop app's sign-in.
	IdentityKind string `json:"identity_kind,omitempty"`
	Identity     string `json:"identity,omitempty"`
	Decision     string `json:"decision"`
	Reason       string `json:"reason"`
}

// Denial is the denials of one program for one ref in one account (or for
// a lock or unlock: Action says which; Reference is "" then).
type Denial struct {
	Path      string    `json:"path"`
	Action    string    `json:"action"`
	Reference string    `json:"reference"`
	Account   string    `json:"account,omitempty"` // "" for the default account
	Count     int       `json:"count"`
	Last      time.Time `json:"last"`
	Reason    string    `json:"reason"`
}

// Denials summarises the DENY decisions in dir's files since since, most
// recent first. Lines that do not parse are skipped.
func Denials(dir string, since time.Time) ([]Denial, error) {
	type key struct{ path, action, ref, account string }
	byKey := map[key]*Denial{}
	err := eachLine(dir, since, func(line []byte) {
		var r Record
		if json.Unmarshal(line, &r) != nil || r.Event != AccessDecision || r.Decision != Deny {
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
		if err != nil || ts.Before(since) {
			return
		}
		if r.Action == "" {
			r.Action = ActionRead
		}
		k := key{r.Requester.Path, r.Action, r.Reference, r.Account}
		d := byKey[k]
		if d == nil {
			d = &Denial{Path: k.path, Action: k.action, Reference: k.ref, Account: k.account}
			byKey[k] = d
		}
		d.Count++
		if ts.After(d.Last) {
			d.Last, d.Reason = ts, r.Reason
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]Denial, 0, len(byKey))
	for _, d := range byKey {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Last.Equal(out[j].Last) {
			return out[i].Last.After(out[j].Last)
		}
		if out[i].Path+out[i].Reference != out[j].Path+out[j].Reference {
			return out[i].Path+out[i].Reference < out[j].Path+out[j].Reference
		}
		return out[i].Account < out[j].Account
	})
	return out, nil
}

// openForReading opens an audit file to read it back: a regular file
// only, never through a link, and without waiting on a FIFO someone put in
// its place.
func openForReading(path string) (*os.File, error) {
	f, err := xdg.OpenPrivate(path, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file: remove it", path)
	}
	return f, nil
}

// Answer is one step of a question to the user, as opx audit --questions
// lists it: asked, answered, timed out, or an answer remembered from
// before used.
type Answer struct {
	Time       time.Time  `json:"time"`
	Path       string     `json:"path"` // the program asked about
	Question   Question   `json:"question"`
	Step       string     `json:"step"`
	Answer     string     `json:"answer,omitempty"`
	Channel    string     `json:"channel,omitempty"`
	AnsweredBy *Requester `json:"answered_by,omitempty"`
}

// Answers returns the APPROVAL records in dir's files since since, oldest
// first. Lines that do not parse are skipped.
func Answers(dir string, since time.Time) ([]Answer, error) {
	var out []Answer
	err := eachLine(dir, since, func(line []byte) {
		var r struct {
			Timestamp  string     `json:"timestamp"`
			Event      string     `json:"event"`
			Requester  Requester  `json:"requester"`
			Question   Question   `json:"question"`
			Step       string     `json:"step"`
			Answer     string     `json:"answer"`
			Channel    string     `json:"channel"`
			AnsweredBy *Requester `json:"answered_by"`
		}
		if json.Unmarshal(line, &r) != nil || r.Event != Approval {
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
		if err != nil || ts.Before(since) {
			return
		}
		out = append(out, Answer{Time: ts, Path: r.Requester.Path, Question: r.Question, Step: r.Step,
			Answer: r.Answer, Channel: r.Channel, AnsweredBy: r.AnsweredBy})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// eachLine calls fn with every line of dir's audit files since since.
func eachLine(dir string, since time.Time, fn func(line []byte)) error {
	for _, file := range Files(dir, since) {
		f, err := openForReading(file)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fn(sc.Bytes())
		}
		f.Close()
	}
	return nil
}
