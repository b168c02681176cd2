package server

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// MaxHookBody caps a webhook body (GitHub caps payloads at 25 MB).
const MaxHookBody = 25 << 20

// hook is POST /hooks/{repo}: verify the signature over the raw bytes,
// store the event durably (group commit), then answer. Nothing is stored
// for a rejected request.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, err := strconv.ParseInt(r.PathValue("repo"), 10, 64)
	if err != nil {
		s.rejectHook(w, "bad_repo", errs.E("hook", errs.NotFound, "no repository %q", r.PathValue("repo")))
		return
	}
	repo, cached := s.hookRepos.get(id, start), true
	if repo == nil {
		if repo, err = s.store.RepoForHook(r.Context(), id); err != nil {
			s.rejectHook(w, "unknown_repo", err)
			return
		}
		s.hookRepos.put(repo, start)
		cached = false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxHookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.rejectHook(w, "too_large", errs.E("hook", errs.TooLarge, "body larger than %d bytes", MaxHookBody))
			return
		}
		s.rejectHook(w, "read", errs.E("hook", errs.Invalid, "reading body: %v", err))
		return
	}
	// The body is in: the group commit waits (briefly) for this event
	// while it is verified, instead of being written just before it comes.
	// (Not while the body is read: a slow upload would hold every batch.)
	arrival := s.intake.Arriving()
	defer arrival.Leave()
	verify := func(repo *store.Repo) error {
		return forge.Verify(repo.Forge, []byte(repo.Secret), r.Header, body, forge.VerifyOptions{AllowSHA1: repo.AllowSHA1})
	}
	err = verify(repo)
	if err != nil && cached {
		// The secret may have changed since it was cached: ask the store.
		s.hookRepos.forget(id)
		stored, serr := s.store.RepoForHook(r.Context(), id)
		if serr != nil {
			s.rejectHook(w, "unknown_repo", serr)
			return
		}
		s.hookRepos.put(stored, time.Now())
		repo, err = stored, verify(stored)
	}
	if err != nil {
		s.rejectHook(w, "signature", err)
		return
	}
	name := eventName(r.Header)
	if name == "" {
		s.rejectHook(w, "no_event", errs.E("hook", errs.Invalid, "no event type header (X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event)"))
		return
	}
	if name == "ping" {
		s.metrics.hooks.WithLabelValues("ping").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"ping": true})
		return
	}
	sum := sha256.Sum256(body)
	ev := &store.Event{
		OrgID: repo.OrgID, RepoID: repo.ID, Source: "webhook", Forge: repo.Forge, Name: name,
		DeliveryID: forge.DeliveryID(repo.Forge, r.Header), BodyHash: sum[:],
		Headers: flatHeaders(r.Header), Body: body, Received: time.Now(), State: store.EventPending,
	}
	acc, err := arrival.Accept(r.Context(), ev)
	if err != nil {
		s.log.Error("storing webhook", "repo", repo.ID, "err", err)
		s.rejectHook(w, "store", errs.E("hook", errs.Unavailable, "could not store the event; retry"))
		return
	}
	s.metrics.hookLatency.Observe(time.Since(start).Seconds())
	if acc.Duplicate {
		s.metrics.hooks.WithLabelValues("duplicate").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"duplicate": true})
		return
	}
	s.metrics.hooks.WithLabelValues("accepted").Inc()
	s.wakeEvents()
	writeJSON(w, http.StatusAccepted, map[string]any{"event_id": acc.ID})
}

func (s *Server) rejectHook(w http.ResponseWriter, reason string, err error) {
	s.metrics.hooks.WithLabelValues("rejected_" + reason).Inc()
	writeError(w, err)
}

// flatHeaders keeps the first value of each header under its canonical
// name (what CEL filters see).
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = v[0]
		}
	}
	return out
}

// eventName is the event type header of any forge.
func eventName(h http.Header) string {
	for _, k := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-Gitlab-Event"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// headerOf turns stored headers back into an http.Header.
func headerOf(m map[string]string) http.Header {
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}
