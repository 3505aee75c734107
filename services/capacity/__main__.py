from shared.runner import main

main("capacity")
