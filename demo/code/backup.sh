#!/bin/sh
# Nightly backup of the home server to the NAS with restic.
set -eu
export RESTIC_REPOSITORY=sftp:nas:/volume1/backup/restic
export RESTIC_PASSWORD_FILE=/root/.restic-pass
restic backup /srv/media /home --exclude-caches --one-file-system
restic forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune
