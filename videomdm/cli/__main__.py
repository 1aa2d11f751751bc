from videomdm.cli import main

main()
