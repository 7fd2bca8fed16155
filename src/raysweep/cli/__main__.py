from raysweep.cli import console

console()
