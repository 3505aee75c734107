from shared.runner import main

main("notification")
