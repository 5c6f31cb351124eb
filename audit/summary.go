package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
	"time"
)

// Record is one ACCESS_DECISION line as read back.
type Record struct {
	Timestamp string    `json:"timestamp"`
	Event     string    `json:"event"`
	Peer      Peer      `json:"peer_info"`
	Requester Requester `json:"requester"`
	Action    string    `json:"action"` // "" in files of older versions: read
	Reference string    `json:"reference"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason"`
}

// Denial is the denials of one program for one ref (or for a lock or
// unlock: Action says which; Reference is "" then).
type Denial struct {
	Path      string    `json:"path"`
	Action    string    `json:"action"`
	Reference string    `json:"reference"`
	Count     int       `json:"count"`
	Last      time.Time `json:"last"`
	Reason    string    `json:"reason"`
}

// Denials summarises the DENY decisions in dir's files since since, most
// recent first. Lines that do not parse are skipped.
func Denials(dir string, since time.Time) ([]Denial, error) {
	type key struct{ path, action, ref string }
	byKey := map[key]*Denial{}
	for _, file := range Files(dir, since) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r Record
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Event != AccessDecision || r.Decision != Deny {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
			if err != nil || ts.Before(since) {
				continue
			}
			if r.Action == "" {
				r.Action = ActionRead
			}
			k := key{r.Requester.Path, r.Action, r.Reference}
			d := byKey[k]
			if d == nil {
				d = &Denial{Path: k.path, Action: k.action, Reference: k.ref}
				byKey[k] = d
			}
			d.Count++
			if ts.After(d.Last) {
				d.Last, d.Reason = ts, r.Reason
			}
		}
		f.Close()
	}
	out := make([]Denial, 0, len(byKey))
	for _, d := range byKey {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Last.Equal(out[j].Last) {
			return out[i].Last.After(out[j].Last)
		}
		return out[i].Path+out[i].Reference < out[j].Path+out[j].Reference
	})
	return out, nil
}
