// Package deploy holds no code: the folder keeps deployment files (deploy/compose/ has the
// configuration and the example .env of the repository's docker-compose.yml) and the tests
// that check them, with the Dockerfile, against what the trainyard binary expects.
//
// It must not hold anything the binary imports; deployment changes stay out of the build.
package deploy
