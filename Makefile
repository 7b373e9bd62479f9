# Everything runs inside the ecm_fem container; the first call of any target provides the Docker
# engine and the images it needs (docker/runtime.sh, docker/image.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help

CONFIG ?= configs/planar_li_llzo.yaml
NP ?= 2
CMD ?= bash
CONTAINER := docker/container.sh

.PHONY: help run test image shell exec runtime lint figures stop-engine

help:
	@echo "make run      run $(CONFIG) under mpirun -n $(NP) in the container (results/ on the host)"
	@echo "make test     the test suite serially, under mpirun -n 2 and (tests marked mpi) -n 3"
	@echo "make image    build the image if this tree's files changed (prints the tag)"
	@echo "make shell    interactive shell in the container, repository mounted"
	@echo "make exec CMD='...'   run any command in the container, e.g."
	@echo "              make exec CMD='mpirun -n 2 ecm-fem run configs/planar_li_llzo.yaml'"
	@echo "make figures          rerun the example configs and remake docs/figures (about 8 min)"
	@echo "make stop-engine      stop a dockerd that docker/runtime.sh started"

runtime:
	@docker/runtime.sh ensure

image: runtime
	@docker/image.sh

run: runtime
	@$(CONTAINER) mpirun -n $(NP) --oversubscribe ecm-fem run $(CONFIG)

test: runtime
	@$(CONTAINER) docker/test.sh $(PYTEST_ARGS)

shell: runtime
	@ECM_FEM_TTY=1 $(CONTAINER) bash

exec: runtime
	@$(CONTAINER) bash -c "$(value CMD)"

lint: runtime
	@$(CONTAINER) bash -c "python3 -m ruff check ecm_fem tests || echo 'ruff not in image'"

figures: runtime
	@$(CONTAINER) docs/make_figures.sh

stop-engine:
	@docker/runtime.sh stop
