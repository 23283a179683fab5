package workflows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

// Store keeps the workflows.
type Store struct {
	db      *db.DB
	now     func() time.Time
	guard   *egress.Guard
	changed func()
}

// NewStore builds the store over d; guard is what a workflow's URL may
// point at (nil: public addresses only), changed is called after every
// change (alerting drops its copies).
func NewStore(d *db.DB, now func() time.Time, guard *egress.Guard, changed func()) *Store {
	if guard == nil {
		guard = egress.New(nil, nil)
	}
	if changed == nil {
		changed = func() {}
	}
	return &Store{db: d, now: now, guard: guard, changed: changed}
}

// Input is what createWorkflow and updateWorkflow take. On update every
// field is replaced: a workflow is small, and a partial update of a
// template and its headers is more confusing than useful.
type Input struct {
	Name          string
	IntegrationID *int
	On            []db.WorkflowEvent
	Conditions    []rules.Condition
	Method        string
	URL           string
	Headers       []db.WorkflowHeader
	Body          string
}

const (
	maxHeaders    = 20
	maxConditions = 20
	maxTemplate   = 64 << 10
)

var followable = []db.WorkflowEvent{db.WorkflowOpened, db.WorkflowAcknowledged, db.WorkflowEscalated, db.WorkflowClosed, db.WorkflowNoteAdded}

var methods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete}

// Workflows returns every workflow by id.
func (s *Store) Workflows(ctx context.Context) ([]*db.Workflow, error) {
	return s.AllWorkflows(ctx, s.db)
}

// AllWorkflows returns every workflow by id through idb; alerting keeps
// them in memory until the next change.
func (s *Store) AllWorkflows(ctx context.Context, idb bun.IDB) ([]*db.Workflow, error) {
	list := []*db.Workflow{}
	if err := idb.NewSelect().Model(&list).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	return list, nil
}

// Workflow returns one workflow, or db.ErrNotFound.
func (s *Store) Workflow(ctx context.Context, id int) (*db.Workflow, error) {
	return s.WorkflowByID(ctx, s.db, id)
}

// WorkflowByID loads one workflow through idb, or db.ErrNotFound.
func (s *Store) WorkflowByID(ctx context.Context, idb bun.IDB, id int) (*db.Workflow, error) {
	w := new(db.Workflow)
	if err := idb.NewSelect().Model(w).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load workflow %d: %w", id, db.Classify(err))
	}
	return w, nil
}

// CreateWorkflow validates and stores a workflow.
func (s *Store) CreateWorkflow(ctx context.Context, in Input) (*db.Workflow, error) {
	defer s.changed()
	now := s.clock()
	w := &db.Workflow{CreatedAt: now, UpdatedAt: now}
	if err := s.apply(w, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.requireIntegration(ctx, tx, w); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(w).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("create workflow: %w", err)
		}
		return audit.Record(ctx, tx, now, audit.Workflow, w.ID, audit.Created, nil, recordOf(w))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// UpdateWorkflow replaces a workflow's settings.
func (s *Store) UpdateWorkflow(ctx context.Context, id int, in Input) (*db.Workflow, error) {
	defer s.changed()
	var w *db.Workflow
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if w, err = s.WorkflowByID(ctx, tx, id); err != nil {
			return err
		}
		before := recordOf(w)
		if err := s.apply(w, in); err != nil {
			return err
		}
		if err := s.requireIntegration(ctx, tx, w); err != nil {
			return err
		}
		w.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(w).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("update workflow %d: %w", id, err)
		}
		return audit.Record(ctx, tx, w.UpdatedAt, audit.Workflow, id, audit.Updated, before, recordOf(w))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DeleteWorkflow removes a workflow. Requests already queued for it are
// dropped when they come due, since it no longer exists.
func (s *Store) DeleteWorkflow(ctx context.Context, id int) error {
	defer s.changed()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		w, err := s.WorkflowByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := db.DeleteByID[db.Workflow](ctx, tx, id, "workflow"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.Workflow, id, audit.Deleted, recordOf(w), nil)
	})
}

func (s *Store) requireIntegration(ctx context.Context, tx bun.Tx, w *db.Workflow) error {
	if w.IntegrationID == nil {
		return nil
	}
	return db.RequireRows(ctx, tx, (*db.Integration)(nil), "integrationId", "integration", []int{*w.IntegrationID})
}

// apply validates in and sets it on w.
func (s *Store) apply(w *db.Workflow, in Input) error {
	name, err := invalid.Name("name", in.Name)
	if err != nil {
		return err
	}
	on, err := checkEvents(in.On)
	if err != nil {
		return err
	}
	if len(in.Conditions) > maxConditions {
		return invalid.Fieldf("conditions", "at most %d conditions", maxConditions)
	}
	if _, err := rules.CompileFilter("conditions", in.Conditions); err != nil {
		return err
	}
	method := strings.ToUpper(strings.TrimSpace(in.Method))
	if !slices.Contains(methods, method) {
		return invalid.Fieldf("action.method", "must be one of %s", strings.Join(methods, ", "))
	}
	if err := s.checkURL(in.URL); err != nil {
		return err
	}
	if err := checkTemplates(in.Headers, in.Body); err != nil {
		return err
	}
	w.Name, w.IntegrationID, w.On, w.Method, w.URL, w.Body = name, in.IntegrationID, on, method, in.URL, in.Body
	w.Conditions = in.Conditions
	if w.Conditions == nil {
		w.Conditions = []rules.Condition{}
	}
	w.Headers = in.Headers
	if w.Headers == nil {
		w.Headers = []db.WorkflowHeader{}
	}
	return nil
}

func checkEvents(on []db.WorkflowEvent) (string, error) {
	if len(on) == 0 {
		return "", invalid.New("on", "at least one change is required")
	}
	var out []string
	for _, e := range on {
		if !slices.Contains(followable, e) {
			return "", invalid.Fieldf("on", "unknown change %q", e)
		}
		if slices.Contains(out, string(e)) {
			return "", invalid.Fieldf("on", "%s is named twice", e)
		}
		out = append(out, string(e))
	}
	return strings.Join(out, ","), nil
}

// checkURL takes http(s) URLs the guard would let a request reach; the
// check when connecting is the one that holds, this one catches mistakes
// and probes early with a clear message.
func (s *Store) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return invalid.New("action.url", "must be an http or https URL without credentials")
	}
	var refused *egress.RefusedError
	if err := s.guard.CheckURL(raw); errors.As(err, &refused) {
		return invalid.New("action.url", fmt.Sprintf("points at a %s address, which Klaxon does not send to; an operator can allow its range with KLAXON_OUTBOUND_ALLOW", refused.Class))
	}
	return nil
}

// checkTemplates parses each template and renders it against a sample
// alert, so that one failing only at run time is refused now.
func checkTemplates(headers []db.WorkflowHeader, body string) error {
	if len(headers) > maxHeaders {
		return invalid.Fieldf("action.headers", "at most %d headers", maxHeaders)
	}
	sample := notifiers.SampleWorkflowData()
	for i, h := range headers {
		if !validHeaderName(h.Name) {
			return invalid.Fieldf(fmt.Sprintf("action.headers[%d].name", i), "%q is not a header name", h.Name)
		}
		if err := checkTemplate(fmt.Sprintf("action.headers[%d].value", i), h.Value, sample); err != nil {
			return err
		}
	}
	return checkTemplate("action.body", body, sample)
}

func checkTemplate(field, text string, sample notifiers.WorkflowData) error {
	if len(text) > maxTemplate {
		return invalid.Fieldf(field, "must be at most %d bytes", maxTemplate)
	}
	if _, err := notifiers.RenderWorkflow(text, sample); err != nil {
		return invalid.Fieldf(field, "template: %s", err)
	}
	return nil
}

// validHeaderName is RFC 9110's token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// clock returns the current time as both engines store it.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
