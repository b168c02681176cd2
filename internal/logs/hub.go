package logs

import "sync"

// Hub wakes followers of a job's log when new output is stored or the job
// ends on this process. Followers also poll the store, which is how they
// see output written by other replicas.
type Hub struct {
	mu      sync.Mutex
	waiters map[int64]chan struct{}
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{waiters: map[int64]chan struct{}{}} }

// Wait returns a channel closed at the next Notify of jobID.
func (h *Hub) Wait(jobID int64) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiters[jobID]
	if !ok {
		ch = make(chan struct{})
		h.waiters[jobID] = ch
	}
	return ch
}

// Notify wakes every current waiter of jobID.
func (h *Hub) Notify(jobID int64) {
	h.mu.Lock()
	ch, ok := h.waiters[jobID]
	delete(h.waiters, jobID)
	h.mu.Unlock()
	if ok {
		close(ch)
	}
}
