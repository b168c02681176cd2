package web

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// The API's answers as the pages read them. Fields the API adds later are
// ignored; environment and approval are read as the environments API
// (issue 11) defines them, and absent until it is there.

type runDetail struct {
	Run  api.Run `json:"run"`
	Jobs []job   `json:"jobs"`
}

type job struct {
	api.Job
	Environment *environment `json:"environment,omitempty"`
	Approval    *approval    `json:"approval,omitempty"`
}

type environment struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

type approval struct {
	Reviewers []any      `json:"reviewers,omitempty"`
	WaitUntil *time.Time `json:"wait_until,omitempty"`
	Decisions []decision `json:"decisions,omitempty"`
}

type decision struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"`
	Approved *bool     `json:"approved,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// Verdict is "approved" or "rejected", however the API says it.
func (d decision) Verdict() string {
	switch {
	case d.Decision != "":
		return d.Decision
	case d.Approved != nil && *d.Approved:
		return "approved"
	case d.Approved != nil:
		return "rejected"
	}
	return "decided"
}

// ReviewerNames are the reviewers as text (names, or {"name"/"user"}).
func (a *approval) ReviewerNames() string {
	var out []string
	for _, r := range a.Reviewers {
		switch v := r.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for _, k := range []string{"name", "user", "login", "team"} {
				if s, ok := v[k].(string); ok {
					out = append(out, s)
					break
				}
			}
		}
	}
	return strings.Join(out, ", ")
}

// leg is one matrix instance of a job (exec.JobResult as stored).
type leg struct {
	Name     string        `json:"name"`
	Result   string        `json:"result"`
	Duration time.Duration `json:"duration"`
}

// Legs are the job's matrix instances once it ran (one when no matrix).
func (j *job) Legs() []leg {
	var ls []leg
	if len(j.Results) > 0 {
		_ = json.Unmarshal(j.Results, &ls) // results of another shape show no legs
	}
	return ls
}

// Title is the job's display name.
func (j *job) Title() string {
	if j.Name != "" {
		return j.Name
	}
	return j.Key
}

// Duration is how long the job ran ("" before it started).
func (j *job) Duration(now time.Time) string { return span(j.Started, j.Finished, now) }

// AwaitingApproval: the job waits for a reviewer.
func (j *job) AwaitingApproval() bool { return j.Status == "awaiting_approval" }

// span is the duration between start and end (now while running).
func span(start, end *time.Time, now time.Time) string {
	if start == nil {
		return ""
	}
	e := now
	if end != nil {
		e = *end
	}
	return human(e.Sub(*start))
}

// human formats a duration as GitHub does: 1h 2m 3s, 4m 5s, 6s.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// shortRef is a ref without refs/heads/ or refs/tags/.
func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// firstLine is a commit message's subject.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// terminal statuses end a run or job.
func terminal(status string) bool {
	switch status {
	case "success", "failure", "cancelled", "skipped", "error", "timed_out", "rejected":
		return true
	}
	return false
}

// statusLabel is how a status reads.
func statusLabel(status string) string {
	if status == "" {
		return "unknown"
	}
	return strings.ReplaceAll(status, "_", " ")
}

// escapes are terminal escape sequences (CSI, OSC, DCS/SOS/PM/APC, and
// two-byte ones) and the other control characters but tab and newline.
var escapes = regexp.MustCompile(`\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -/]*[0-~]?|[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]`)

// plain is user text (a commit message) without terminal escapes and
// control characters, which a page would show as boxes.
// Invalid UTF-8 is replaced first, so that removing a control byte cannot
// join two stray bytes into a control character.
func plain(s string) string {
	return escapes.ReplaceAllString(strings.ToValidUTF8(s, "\uFFFD"), "")
}
