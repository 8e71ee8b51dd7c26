"""A real robot computer (issue 9): busy CPU, little memory or /dev/shm, a full disk, stuck or
killed workers, forks, Ctrl-C at the wrong moment, and settings that used to fail only after a
whole episode. Where frames are recorded every test checks the same two guarantees: every frame
add_frame accepted is in every camera's video and in the rows (decoded and counted), and nothing
is left in /dev/shm (the autouse fixture). Slow variants are marked soak (`pytest -m soak`)."""
