package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newReleasePauseCmd(r *releaseCLI) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "pause ID --reason REASON",
		Short: "Hold a release before its next stage",
		Long: `Holds the release before its next stage: what is deploying now finishes, nothing new
starts until someone resumes it. Its requester and its runbook's rollbackAuthority may pause.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			if _, err := c.Operate(cmd.Context(), args[0], "pause", reason); err != nil {
				return explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Paused %s: it holds before its next stage.\nResume it with: trainyard release resume %s\n", args[0], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the release must wait (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newReleaseResumeCmd(r *releaseCLI) *cobra.Command {
	return &cobra.Command{
		Use:   "resume ID",
		Short: "Let a paused release go on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Operate(cmd.Context(), args[0], "resume", "")
			if err != nil {
				return explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Resumed %s (phase %s)\n", args[0], res.Phase)
			return nil
		},
	}
}
