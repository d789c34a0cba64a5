from sublim.cli import main

main()
