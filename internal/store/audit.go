package store

import (
	"context"
	"sync/atomic"
)

// PendingAudit is an audit entry that goes with a change: a store that
// supports it (the SQL store) inserts it in the transaction of the first
// write made with the context WithAudit returned, so the entry and the
// change commit together or not at all. The caller checks Written after
// the change and appends the entry itself when no transaction took it (a
// store without support, or a change that wrote nothing).
type PendingAudit struct {
	build   func() *AuditEntry
	written atomic.Bool
}

type pendingAuditKey struct{}

// WithAudit returns ctx carrying the entry build makes; build runs inside
// the change's transaction, after the change, so it may read what the
// change set (a new token's ID).
func WithAudit(ctx context.Context, build func() *AuditEntry) (context.Context, *PendingAudit) {
	p := &PendingAudit{build: build}
	return context.WithValue(ctx, pendingAuditKey{}, p), p
}

// PendingAuditOf is ctx's audit entry not yet written, or nil.
func PendingAuditOf(ctx context.Context) *PendingAudit {
	p, _ := ctx.Value(pendingAuditKey{}).(*PendingAudit)
	if p == nil || p.written.Load() {
		return nil
	}
	return p
}

// Entry builds the entry (again at each call: a retried transaction
// inserts a fresh one).
func (p *PendingAudit) Entry() *AuditEntry { return p.build() }

// MarkWritten records that a committed transaction holds the entry.
func (p *PendingAudit) MarkWritten() { p.written.Store(true) }

// Written reports whether a committed transaction holds the entry.
func (p *PendingAudit) Written() bool { return p.written.Load() }
