package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/klaxonhq/klaxon/db"
)

// api is just enough of Klaxon's GraphQL API for setting up a run and
// checking it.
type api struct {
	base  string
	http  *http.Client
	token string
}

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

func (a *api) do(ctx context.Context, query string, vars map[string]any, out any) error {
	payload, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("encode graphql request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/graphql", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build graphql request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("graphql request: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read graphql reply: %w", err)
	}
	var reply struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("graphql reply (HTTP %d) is not JSON: %w", resp.StatusCode, err)
	}
	if len(reply.Errors) > 0 {
		msgs := make([]string, len(reply.Errors))
		for i, e := range reply.Errors {
			msgs[i] = e.Message
			if e.Extensions.Code != "" {
				msgs[i] += " (" + e.Extensions.Code + ")"
			}
		}
		return errors.New("graphql: " + strings.Join(msgs, "; "))
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("decode graphql data: %w", err)
	}
	return nil
}

func (a *api) login(ctx context.Context, email, password string) error {
	var data struct {
		Login struct {
			Token string `json:"token"`
		} `json:"login"`
	}
	err := a.do(ctx, `mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }`,
		map[string]any{"email": email, "password": password}, &data)
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", email, err)
	}
	a.token = data.Login.Token
	return nil
}

type integration struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// createIntegration makes a DETECTIFY integration with no ruleset given,
// so it gets its own copy of the preset: the rules real traffic meets.
func (a *api) createIntegration(ctx context.Context, name string) (*integration, error) {
	var data struct {
		CreateIntegration integration `json:"createIntegration"`
	}
	err := a.do(ctx, `mutation($name: String!) { createIntegration(input: {name: $name, type: DETECTIFY}) { id url } }`,
		map[string]any{"name": name}, &data)
	if err != nil {
		return nil, fmt.Errorf("create integration: %w", err)
	}
	if data.CreateIntegration.URL == "" {
		return nil, errors.New("create integration: no URL in the reply (is the user an admin?)")
	}
	return &data.CreateIntegration, nil
}

// webhookURL puts the integration URL's path on the base URL: the public
// URL Klaxon shows may name another host than the one benchmarked.
func webhookURL(base, integrationURL string) (string, error) {
	u, err := url.Parse(integrationURL)
	if err != nil {
		return "", fmt.Errorf("parse integration URL %q: %w", integrationURL, err)
	}
	if !strings.Contains(u.Path, "/webhooks/") {
		return "", fmt.Errorf("integration URL %q has no /webhooks/ path", integrationURL)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse base URL %q: %w", base, err)
	}
	b.Path = u.Path[strings.Index(u.Path, "/webhooks/"):]
	return b.String(), nil
}

type pageInfo struct {
	EndCursor   *string `json:"endCursor"`
	HasNextPage bool    `json:"hasNextPage"`
}

type inboundNode struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

type alertNode struct {
	ID          string `json:"id"`
	SourceID    string `json:"sourceId"`
	Status      string `json:"status"`
	AppendCount int    `json:"appendCount"`
}

// listTotal is a list's totalCount and whether Klaxon stopped counting.
type listTotal struct {
	count  int
	capped bool
}

// matches reports whether the total agrees with n items read by paging.
func (t listTotal) matches(n int) bool {
	if t.capped {
		return t.count == db.CountCap && n > db.CountCap
	}
	return t.count == n
}

func (t listTotal) String() string {
	if t.capped {
		return fmt.Sprintf("%d (capped)", t.count)
	}
	return fmt.Sprint(t.count)
}

// pageSize is the largest page Klaxon serves.
const pageSize = 500

// inboundMessages reads the integration's whole inbound log, page by page.
func (a *api) inboundMessages(ctx context.Context, integrationID string) ([]inboundNode, listTotal, error) {
	var all []inboundNode
	var after *string
	for {
		var data struct {
			InboundMessages struct {
				Nodes      []inboundNode `json:"nodes"`
				TotalCount int           `json:"totalCount"`
				Capped     bool          `json:"totalCountCapped"`
				PageInfo   pageInfo      `json:"pageInfo"`
			} `json:"inboundMessages"`
		}
		err := a.do(ctx, `query($id: ID!, $first: Int!, $after: String) {
  inboundMessages(integrationId: $id, first: $first, after: $after) { totalCount totalCountCapped pageInfo { endCursor hasNextPage } nodes { id status } }
}`, map[string]any{"id": integrationID, "first": pageSize, "after": after}, &data)
		if err != nil {
			return nil, listTotal{}, fmt.Errorf("list inbound messages after %d: %w", len(all), err)
		}
		c := data.InboundMessages
		all = append(all, c.Nodes...)
		if !c.PageInfo.HasNextPage || c.PageInfo.EndCursor == nil {
			return all, listTotal{c.TotalCount, c.Capped}, nil
		}
		after = c.PageInfo.EndCursor
	}
}

// alerts reads every alert of the integration, whatever its status.
func (a *api) alerts(ctx context.Context, integrationID string) ([]alertNode, listTotal, error) {
	var all []alertNode
	var after *string
	for {
		var data struct {
			Alerts struct {
				Nodes      []alertNode `json:"nodes"`
				TotalCount int         `json:"totalCount"`
				Capped     bool        `json:"totalCountCapped"`
				PageInfo   pageInfo    `json:"pageInfo"`
			} `json:"alerts"`
		}
		err := a.do(ctx, `query($id: ID!, $first: Int!, $after: String) {
  alerts(filter: {integrationId: $id}, first: $first, after: $after) { totalCount totalCountCapped pageInfo { endCursor hasNextPage } nodes { id sourceId status appendCount } }
}`, map[string]any{"id": integrationID, "first": pageSize, "after": after}, &data)
		if err != nil {
			return nil, listTotal{}, fmt.Errorf("list alerts after %d: %w", len(all), err)
		}
		c := data.Alerts
		all = append(all, c.Nodes...)
		if !c.PageInfo.HasNextPage || c.PageInfo.EndCursor == nil {
			return all, listTotal{c.TotalCount, c.Capped}, nil
		}
		after = c.PageInfo.EndCursor
	}
}
