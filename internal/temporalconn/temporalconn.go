// Package temporalconn connects Trainyard processes to a Temporal frontend (the dev server,
// a self-hosted cluster or Temporal Cloud) and makes sure the namespace knows Trainyard's
// search attributes. It holds no workflow logic.
package temporalconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/workflows"
)

// Dial connects to Temporal, retrying until ctx ends so that processes started together with
// the server (dev mode, compose) wait for it instead of failing.
func Dial(ctx context.Context, cfg config.Temporal, logger *slog.Logger) (client.Client, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Logger:    tlog.NewStructuredLogger(logger),
	}
	switch {
	case cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load temporal client certificate: %w", err)
		}
		opts.ConnectionOptions.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case cfg.APIKey != "":
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
		opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if attempt == 3 {
			logger.Info("waiting for Temporal", "address", cfg.Address, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.Address, cfg.Namespace, errors.Join(lastErr, ctx.Err()))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// EnsureSearchAttributes registers the Trainyard search attributes the namespace lacks.
// Temporal Cloud manages attributes through its own API: there a failure is only a warning.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, logger *slog.Logger) error {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, kind := range workflows.SearchAttributeTypes {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		t := enumspb.INDEXED_VALUE_TYPE_KEYWORD
		if kind == "Int" {
			t = enumspb.INDEXED_VALUE_TYPE_INT
		}
		missing[name] = t
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing}); err != nil {
		return fmt.Errorf("register search attributes on %s (on Temporal Cloud add them with tcld): %w", namespace, err)
	}
	logger.Info("registered search attributes", "namespace", namespace, "count", len(missing))
	return nil
}
