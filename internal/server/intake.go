package server

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// MaxHookBody caps a webhook body (GitHub caps payloads at 25 MB).
const MaxHookBody = 25 << 20

// hook is POST /hooks/{repo}: check the signature's headers, read the
// body within the unverified-bytes budgets (s.hooks.bodies) while its HMAC is
// computed, store the event durably (group commit), then answer. Nothing
// is stored for a rejected request.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, err := strconv.ParseInt(r.PathValue("repo"), 10, 64)
	if err != nil {
		s.rejectHook(w, "bad_repo", errs.E("hook", errs.NotFound, "no repository %q", r.PathValue("repo")))
		return
	}
	repoKey, addrKey := hookKeys(r, id)
	if err := s.hooks.bad.check(repoKey, addrKey); err != nil {
		s.rejectHook(w, "rate_limited", err)
		return
	}
	if r.ContentLength > MaxHookBody {
		s.rejectHook(w, "too_large", errs.E("hook", errs.TooLarge, "body larger than %d bytes", MaxHookBody))
		return
	}
	repo, v, fresh, err := s.hookVerifier(r, id, start)
	if err != nil {
		s.hooks.bad.refused(verifyReason(err), repoKey, addrKey)
		s.rejectHook(w, verifyReason(err), err)
		return
	}
	name := eventName(r.Header)
	if name == "" {
		s.rejectHook(w, "no_event", errs.E("hook", errs.Invalid, "no event type header (X-GitHub-Event, X-Gitea-Event or X-Gitlab-Event)"))
		return
	}
	hb, err := s.hooks.bodies.read(http.MaxBytesReader(w, r.Body, MaxHookBody), r.ContentLength, v)
	if err != nil {
		s.rejectHook(w, bodyReason(err), err)
		return
	}
	defer hb.release()
	// The body is in: the group commit waits (briefly) for this event
	// while it is verified, instead of being written just before it comes.
	// (Not while the body is read: a slow upload would hold every batch.)
	arrival := s.hooks.intake.Arriving()
	defer arrival.Leave()
	if repo, err = s.checkHook(r, repo, fresh, v, hb); err != nil {
		s.hooks.bad.refused(verifyReason(err), repoKey, addrKey)
		s.rejectHook(w, verifyReason(err), err)
		return
	}
	body, err := hb.bytes()
	if err != nil {
		s.rejectHook(w, "read", err)
		return
	}
	if name == "ping" {
		s.metrics.hooks.WithLabelValues("ping").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"ping": true})
		return
	}
	if !repo.RunTestDeliveries && forge.IsTestDelivery(repo.Forge, name, body) {
		// Gitea's "Test delivery" button: a push that moves nothing, which
		// would start real runs (deploys). Answered as GitHub's ping.
		s.metrics.hooks.WithLabelValues("test_delivery").Inc()
		writeJSON(w, http.StatusOK, map[string]any{"ping": true, "test_delivery": true})
		return
	}
	ev := &store.Event{
		OrgID: repo.OrgID, RepoID: repo.ID, Source: "webhook", Forge: repo.Forge, Name: name,
		DeliveryID: forge.DeliveryID(repo.Forge, r.Header), BodyHash: eventHash(name, body),
		Headers: flatHeaders(r.Header), Body: body, Received: time.Now(), State: store.EventPending,
	}
	s.storeHook(w, r, arrival, ev, start)
}

// storeHook stores an accepted webhook's event and answers.
func (s *Server) storeHook(w http.ResponseWriter, r *http.Request, arrival *sqlstore.Arrival, ev *store.Event, start time.Time) {
	acc, err := arrival.Accept(r.Context(), ev)
	if err != nil {
		s.log.Error("storing webhook", "repo", ev.RepoID, "err", err)
		s.rejectHook(w, "store", api.Public(errs.E("hook", errs.Unavailable, "could not store the event; retry")))
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
	writeEventID(w, acc.ID)
}

// jsonType is the Content-Type of answers (shared: never changed).
var jsonType = []string{"application/json"}

// writeEventID answers 202 with {"event_id":ID}, as writeJSON would,
// without its encoder and map: it is every accepted webhook's answer.
func writeEventID(w http.ResponseWriter, id int64) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusAccepted)
	var buf [48]byte
	b := append(buf[:0], `{"event_id":`...)
	b = strconv.AppendInt(b, id, 10)
	_, _ = w.Write(append(b, "}\n"...))
}

// hookVerifier finds the repository a webhook is addressed to and checks
// the headers of its signature, before any byte of the body is read;
// fresh says the repository was read from the store just now.
func (s *Server) hookVerifier(r *http.Request, id int64, now time.Time) (repo *store.Repo, v *forge.Verifier, fresh bool, err error) {
	if repo = s.hooks.repos.get(id, now); repo == nil {
		if repo, err = s.freshHookRepo(r, id); errs.Is(err, errs.NotFound) {
			return nil, nil, false, errs.E("hook", errs.NotFound, "no repository %d", id)
		}
		if err != nil {
			return nil, nil, false, err
		}
		fresh = true
	}
	v, err = newVerifier(repo, r.Header)
	if err != nil && !fresh {
		// The repository (its forge, GitLab's token) may have changed since it was cached.
		if repo, err = s.freshHookRepo(r, id); err != nil {
			return nil, nil, false, err
		}
		fresh = true
		v, err = newVerifier(repo, r.Header)
	}
	return repo, v, fresh, err
}

// checkHook checks the signature over the body read. When it does not
// match a cached repository's secret, the stored secret (which may be
// new) is tried over the same bytes.
func (s *Server) checkHook(r *http.Request, repo *store.Repo, fresh bool, v *forge.Verifier, hb *hookBody) (*store.Repo, error) {
	err := v.Check()
	if err == nil || fresh {
		return repo, err
	}
	stored, serr := s.freshHookRepo(r, repo.ID)
	if serr != nil {
		return nil, serr
	}
	if stored.Secret == repo.Secret && stored.Forge == repo.Forge && stored.AllowSHA1 == repo.AllowSHA1 {
		return nil, err
	}
	if v, err = newVerifier(stored, r.Header); err != nil {
		return nil, err
	}
	if err := hb.replay(v); err != nil {
		return nil, errs.Wrap("hook", errs.Unavailable, err)
	}
	return stored, v.Check()
}

func (s *Server) freshHookRepo(r *http.Request, id int64) (*store.Repo, error) {
	s.hooks.repos.forget(id)
	repo, err := s.store.RepoForHook(r.Context(), id)
	if err != nil {
		return nil, err
	}
	s.hooks.repos.put(repo, time.Now())
	return repo, nil
}

func newVerifier(repo *store.Repo, h http.Header) (*forge.Verifier, error) {
	return forge.NewVerifier(repo.Forge, []byte(repo.Secret), h, forge.VerifyOptions{AllowSHA1: repo.AllowSHA1})
}

// eventHash is the de-duplication hash of a webhook: the event type and
// the body, so that two events with equal bodies (GitHub's installation
// and integration_installation) stay two.
func eventHash(name string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

// verifyReason is the metrics label of a webhook refused before its
// signature matched: the signature, no such repository, or the store.
func verifyReason(err error) string {
	switch errs.KindOf(err) {
	case errs.Unauthorized, errs.Invalid:
		return "signature"
	case errs.NotFound:
		return "unknown_repo"
	}
	return "store"
}

// bodyReason is the metrics label of a body that could not be read.
func bodyReason(err error) string {
	switch errs.KindOf(err) {
	case errs.TooLarge:
		return "too_large"
	case errs.Unavailable:
		return "busy"
	}
	return "read"
}

// rejectHook answers a refused webhook. Errors of the server's state
// (the database down...) are logged; the caller reads "unavailable, retry".
func (s *Server) rejectHook(w http.ResponseWriter, reason string, err error) {
	s.metrics.hooks.WithLabelValues("rejected_" + reason).Inc()
	if api.ServerSide(err) {
		s.log.Warn("webhook refused", "reason", reason, "err", err)
	}
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
