package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// snapshotOf is a domain snapshot as the API shows it (see projectOf).
func snapshotOf(repositoryID string, sn domain.Snapshot) queries.Snapshot {
	return queries.Snapshot{ID: sn.ID, RepositoryID: repositoryID, Status: sn.Status, Ref: sn.Ref, Digest: sn.Digest,
		SizeBytes: sn.SizeBytes, FileCount: int64(sn.FileCount), Commit: sn.Commit, CapturedAt: stamp(sn.CapturedAt), Error: sn.Error}
}

type gitSnapshotRequest struct {
	Ref string `json:"ref"`
}

// createSnapshot serves POST /repositories/{id}/snapshots (editor). A JSON
// body ({"ref": "main"}, or no body at all) asks for a git capture of a git
// repository: 202 with the pending snapshot, which the worker captures
// later. Any other body is an archive upload to an archive repository,
// application/gzip (a tar.gz), application/x-gzip or application/zip,
// captured before the answer: 201 with the captured snapshot. Either
// request to a repository of the other kind is 400 naming source.kind;
// an archive refused for its content is 400 naming archive, one over
// Config.MaxSnapshotBytes or an archive limit 413, any other content type
// 415.
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id := chi.URLParam(r, "repository_id")
	if err := s.authorizeRepository(r, p, id, domain.RoleEditor); err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "application/json" || ct == "" && r.ContentLength == 0 {
		return s.requestGitSnapshot(w, r, p, id)
	}
	return s.uploadSnapshot(w, r, p, id, ct)
}

func (s *Server) requestGitSnapshot(w http.ResponseWriter, r *http.Request, p *Principal, repositoryID string) error {
	var req gitSnapshotRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	res, err := s.cmd.RequestGitSnapshot.Handle(commandContext(r, p), commands.RequestGitSnapshot{RepositoryID: repositoryID, Ref: req.Ref})
	if err != nil {
		return hideNotFound(err, "repository")
	}
	return s.answerSnapshot(w, r, p, http.StatusAccepted, res)
}

// uploadSnapshot streams the body to the snapshot service, which spools it
// to a temporary file (never to memory) and refuses more than
// Config.MaxSnapshotBytes. Reading the body may take up to
// Config.UploadTimeout (the route's timeout too).
func (s *Server) uploadSnapshot(w http.ResponseWriter, r *http.Request, p *Principal, repositoryID, contentType string) error {
	limit := s.cfg.MaxSnapshotBytes
	if r.ContentLength > limit {
		return errorf(ErrPayloadTooLarge, fmt.Sprintf("the snapshot is larger than %d bytes", limit))
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.UploadTimeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	res, err := s.snaps.Upload(commandContext(r, p), repositoryID, contentType, r.Body, limit)
	if err != nil {
		return hideNotFound(err, "repository")
	}
	return s.answerSnapshot(w, r, p, http.StatusCreated, res)
}

// answerSnapshot waits for the read models and answers with the snapshot
// as the query side shows it (or as the command left it, when the read
// model is late).
func (s *Server) answerSnapshot(w http.ResponseWriter, r *http.Request, p *Principal, status int, res commands.SnapshotResult) error {
	s.consistent(r, res.Result)
	out, err := s.q.Snapshot(r.Context(), p.caller(), res.Snapshot.ID)
	if errors.Is(err, domain.ErrNotFound) {
		out, err = snapshotOf(res.RepositoryID, res.Snapshot), nil
	}
	return answer(w, status, out, err)
}
